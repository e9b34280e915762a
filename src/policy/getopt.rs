//! A wrapper's options read as GNU `getopt_long` with a leading `+` reads them: stop at the
//! first operand or `--`; short flags cluster (`-tx`), a short option's value is the rest of
//! its cluster or the next word; long options take `--opt=value` or `--opt value` and may be
//! abbreviated to any unique prefix (`--exe` is `--exec`). An option the spec does not know
//! is refused: policy cannot say what an unknown option does.
//!
//! Owns: `Spec`, `parse`. Never decides allow/deny, never does IO.

use super::shell::ShellWord;

/// What a program accepts. Short options are single characters; `short_optional` values
/// must be attached (`-i{}`), as getopt's `::` says.
#[derive(Default)]
pub struct Spec<'a> {
    pub short_flags: &'a str,
    pub short_valued: &'a str,
    pub short_optional: &'a str,
    pub long_flags: &'a [&'a str],
    pub long_valued: &'a [&'a str],
    pub long_optional: &'a [&'a str],
    /// `+x` is an option too (shells).
    pub plus: bool,
}

/// The options found, by canonical name (`x` or `exec`), and where the operands start.
#[derive(Debug, Default)]
pub struct Parsed {
    pub options: Vec<(String, Option<String>)>,
    pub operands: usize,
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }

    #[cfg(test)]
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }
}

/// Reads the options of `program` from `args`; `Err` names the option policy refuses.
pub fn parse(program: &str, spec: &Spec, args: &[ShellWord]) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut i = 0;
    while let Some(word) = args.get(i) {
        // A computed word here may be an option at run time (`${x:--c}`): refused.
        let Some(text) = word.literal.as_deref() else {
            return Err(format!("`{}` in `{program}`'s option position is computed at run time", word.raw));
        };
        if text == "--" {
            i += 1;
            break;
        }
        let is_plus = spec.plus && text.starts_with('+') && text.len() > 1;
        if !is_plus && (!text.starts_with('-') || text == "-") {
            break;
        }
        i += 1;
        if let Some(long) = text.strip_prefix("--") {
            i += long_option(program, spec, long, args.get(i), &mut parsed)?;
            continue;
        }
        let cluster = &text[1..];
        for (pos, c) in cluster.char_indices() {
            let attached = &cluster[pos + c.len_utf8()..];
            if spec.short_flags.contains(c) {
                parsed.options.push((c.to_string(), None));
            } else if spec.short_optional.contains(c) {
                parsed.options.push((c.to_string(), Some(attached.to_owned())));
                break;
            } else if spec.short_valued.contains(c) {
                let value = if attached.is_empty() {
                    i += 1;
                    args.get(i - 1).map(|w| w.text().to_owned())
                } else {
                    Some(attached.to_owned())
                };
                let value = value.ok_or_else(|| format!("option `-{c}` of `{program}` needs a value"))?;
                parsed.options.push((c.to_string(), Some(value)));
                break;
            } else {
                return Err(format!("unknown option `{program} -{c}`: policy cannot say what it does"));
            }
        }
    }
    parsed.operands = i;
    Ok(parsed)
}

/// One `--name[=value]`; returns how many following words it consumed.
fn long_option(
    program: &str,
    spec: &Spec,
    long: &str,
    next: Option<&ShellWord>,
    parsed: &mut Parsed,
) -> Result<usize, String> {
    let (name, inline) = match long.split_once('=') {
        Some((n, v)) => (n, Some(v.to_owned())),
        None => (long, None),
    };
    let all = spec.long_flags.iter().chain(spec.long_valued).chain(spec.long_optional);
    let exact = all.clone().find(|o| **o == name);
    let candidates: Vec<&&str> = all.filter(|o| o.starts_with(name)).collect();
    let resolved = match (exact, candidates.as_slice()) {
        (Some(o), _) => *o,
        (None, [one]) if !name.is_empty() => **one,
        (None, []) | (None, [_]) => {
            return Err(format!("unknown option `{program} --{name}`: policy cannot say what it does"));
        }
        (None, _) => return Err(format!("`{program}` option `--{name}` is ambiguous")),
    };
    if spec.long_valued.contains(&resolved) {
        return match inline {
            Some(v) => {
                parsed.options.push((resolved.to_owned(), Some(v)));
                Ok(0)
            }
            None => {
                let v = next.map(|w| w.text().to_owned());
                let v = v.ok_or_else(|| format!("option `--{resolved}` of `{program}` needs a value"))?;
                parsed.options.push((resolved.to_owned(), Some(v)));
                Ok(1)
            }
        };
    }
    if inline.is_some() && spec.long_flags.contains(&resolved) {
        return Err(format!("option `--{resolved}` of `{program}` takes no value"));
    }
    parsed.options.push((resolved.to_owned(), inline));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<ShellWord> {
        args.iter()
            .map(|a| ShellWord {
                literal: Some((*a).to_owned()),
                raw: (*a).to_owned(),
                expands: false,
                braces: false,
                extglob: false,
                splits: false,
            })
            .collect()
    }

    const WATCH: Spec = Spec {
        short_flags: "bcegptwx",
        short_valued: "n",
        short_optional: "d",
        long_flags: &["beep", "color", "exec", "errexit", "no-title"],
        long_valued: &["interval"],
        long_optional: &["differences"],
        plus: false,
    };

    #[test]
    fn clusters_abbreviations_and_values_are_read_like_getopt() {
        let p = parse("watch", &WATCH, &words(&["-tx", "ls"])).unwrap();
        assert!(p.has("x") && p.has("t") && p.operands == 1);
        let p = parse("watch", &WATCH, &words(&["--exe", "ls"])).unwrap();
        assert!(p.has("exec"));
        let p = parse("watch", &WATCH, &words(&["-n5", "--interval=2", "--", "-x"])).unwrap();
        assert_eq!((p.value("n"), p.value("interval"), p.operands), (Some("5"), Some("2"), 3));
        assert!(parse("watch", &WATCH, &words(&["-z", "ls"])).is_err());
        assert!(parse("watch", &WATCH, &words(&["--e", "ls"])).is_err(), "ambiguous");
    }
}
