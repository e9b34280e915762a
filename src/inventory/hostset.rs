//! Folded host sets in ClusterShell's notation: `h[1-100]`, `web[01-40,42].example.com`.
//!
//! `fold` gathers aliases that differ only in their last run of digits into one bracketed
//! range list (zero padding kept: `web01` and `web1` are different names and never share a
//! range), lists other aliases as they are, sorts naturally and joins with `,`. `unfold` is
//! its inverse, bounded so a pattern cannot ask for millions of names.
//!
//! Owns: the notation. Never looks at the inventory (that is `select.rs`).

use std::collections::BTreeMap;

/// Most names one folded set may expand to.
pub const MAX_UNFOLDED: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostSetError {
    #[error("host set {0:?} has an unbalanced `[` or `]`")]
    Unbalanced(String),
    #[error("host set {0:?}: {1:?} is not a number or range (`1-10`, `01-40`)")]
    BadRange(String, String),
    #[error("host set {0:?} expands to more than {MAX_UNFOLDED} names")]
    TooMany(String),
}

/// An alias split at its last run of digits.
struct Numbered<'a> {
    prefix: &'a str,
    digits: &'a str,
    suffix: &'a str,
}

fn split_last_number(alias: &str) -> Option<Numbered<'_>> {
    let bytes = alias.as_bytes();
    let end = bytes.iter().rposition(u8::is_ascii_digit)? + 1;
    let start = bytes[..end].iter().rposition(|b| !b.is_ascii_digit()).map_or(0, |i| i + 1);
    let digits = &alias[start..end];
    // Longer runs do not fit a u64 range; such names are listed as they are.
    (digits.len() <= 18).then(|| Numbered { prefix: &alias[..start], digits, suffix: &alias[end..] })
}

/// Width a number is padded to: its length when it has a leading zero, else none.
fn padding(digits: &str) -> usize {
    if digits.len() > 1 && digits.starts_with('0') { digits.len() } else { 0 }
}

/// The folded notation of `aliases` (duplicates collapse), in natural order.
pub fn fold<S: AsRef<str>>(aliases: &[S]) -> String {
    let mut numbered: BTreeMap<(&str, &str), Vec<(u64, &str)>> = BTreeMap::new();
    let mut plain: Vec<&str> = Vec::new();
    for alias in aliases {
        let alias = alias.as_ref();
        match split_last_number(alias).and_then(|n| Some((n.digits.parse::<u64>().ok()?, n))) {
            Some((value, n)) => numbered.entry((n.prefix, n.suffix)).or_default().push((value, n.digits)),
            None => plain.push(alias),
        }
    }
    // (prefix, suffix, padding) -> numbers; BTreeMap/sets give the natural order. A number
    // without a leading zero joins a padded range of its own width (`web[01-40]` holds
    // `web10`): it prints the same either way.
    let mut ranged: BTreeMap<(&str, &str, usize), std::collections::BTreeSet<u64>> = BTreeMap::new();
    for ((prefix, suffix), numbers) in numbered {
        let widths: std::collections::BTreeSet<usize> = numbers.iter().map(|(_, d)| padding(d)).collect();
        for (value, digits) in numbers {
            let pad = match padding(digits) {
                0 if widths.contains(&digits.len()) => digits.len(),
                p => p,
            };
            ranged.entry((prefix, suffix, pad)).or_default().insert(value);
        }
    }
    let mut parts: Vec<(String, String)> = plain.iter().map(|a| ((*a).to_owned(), (*a).to_owned())).collect();
    for ((prefix, suffix, pad), numbers) in ranged {
        let fmt = |n: u64| format!("{n:0pad$}");
        let numbers: Vec<u64> = numbers.into_iter().collect();
        let text = if numbers.len() == 1 {
            format!("{prefix}{}{suffix}", fmt(numbers[0]))
        } else {
            let mut ranges = Vec::new();
            let mut i = 0;
            while i < numbers.len() {
                let mut j = i;
                while j + 1 < numbers.len() && numbers[j + 1] == numbers[j] + 1 {
                    j += 1;
                }
                ranges.push(if i == j { fmt(numbers[i]) } else { format!("{}-{}", fmt(numbers[i]), fmt(numbers[j])) });
                i = j + 1;
            }
            format!("{prefix}[{}]{suffix}", ranges.join(","))
        };
        parts.push((format!("{prefix}\u{0}{suffix}"), text));
    }
    parts.sort();
    parts.dedup();
    parts.into_iter().map(|(_, text)| text).collect::<Vec<_>>().join(",")
}

/// Indices of `items` grouped by equal `key`, largest group first; within a group and
/// among equally large groups, input order is kept. What every folded result (fan-out,
/// plan, runbook step) groups hosts with before folding their aliases.
pub fn group_by<'a, T, K: PartialEq>(items: &'a [T], key: impl Fn(&'a T) -> K) -> Vec<Vec<usize>> {
    let mut groups: Vec<(K, Vec<usize>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let k = key(item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(i),
            None => groups.push((k, vec![i])),
        }
    }
    let mut groups: Vec<Vec<usize>> = groups.into_iter().map(|(_, m)| m).collect();
    groups.sort_by_key(|m| std::cmp::Reverse(m.len()));
    groups
}

/// One group of a folded result: the members' aliases folded (`h[1-98]`) and the members'
/// indices (the first one stands for the group).
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    pub hosts: String,
    pub members: Vec<usize>,
}

/// The one fold of every per-host result (fan-out, plan, runbook step, transfers): items
/// grouped by equal `key` (`group_by`), each group's aliases folded.
pub fn fold_groups<'a, T, K: PartialEq>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
    alias: impl Fn(&'a T) -> &'a str,
) -> Vec<Folded> {
    group_by(items, key)
        .into_iter()
        .map(|members| {
            let aliases: Vec<&str> = members.iter().map(|&i| alias(&items[i])).collect();
            Folded { hosts: fold(&aliases), members }
        })
        .collect()
}

/// Whether `term` uses the bracket notation of a folded set (`[` followed by digits,
/// `-` and `,` only) rather than a glob bracket expression (`web[ab]`).
pub fn is_folded(term: &str) -> bool {
    term.split('[').skip(1).any(|rest| {
        rest.split_once(']').is_some_and(|(inside, _)| {
            !inside.is_empty() && inside.chars().all(|c| c.is_ascii_digit() || c == '-' || c == ',')
        })
    })
}

/// Splits `text` at `,` (and the `extra` separators) outside brackets.
pub fn split_outside_brackets<'a>(text: &'a str, extra: &[char]) -> Result<Vec<&'a str>, HostSetError> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.checked_sub(1).ok_or_else(|| HostSetError::Unbalanced(text.to_owned()))?,
            c if depth == 0 && (c == ',' || extra.contains(&c)) => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(HostSetError::Unbalanced(text.to_owned()));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

/// Every name a folded set names, in the order written.
pub fn unfold(set: &str) -> Result<Vec<String>, HostSetError> {
    let mut out = Vec::new();
    for part in split_outside_brackets(set, &[])? {
        let mut names = vec![String::new()];
        let mut rest = part;
        while let Some(open) = rest.find('[') {
            let close =
                rest[open..].find(']').map(|c| open + c).ok_or_else(|| HostSetError::Unbalanced(set.to_owned()))?;
            let values = range_list(set, &rest[open + 1..close])?;
            if names.len().saturating_mul(values.len()) + out.len() > MAX_UNFOLDED {
                return Err(HostSetError::TooMany(set.to_owned()));
            }
            let literal = &rest[..open];
            names = names.iter().flat_map(|n| values.iter().map(move |v| format!("{n}{literal}{v}"))).collect();
            rest = &rest[close + 1..];
        }
        out.extend(names.into_iter().map(|n| n + rest).filter(|n| !n.is_empty()));
        if out.len() > MAX_UNFOLDED {
            return Err(HostSetError::TooMany(set.to_owned()));
        }
    }
    Ok(out)
}

/// `1-3,05,07-08` → `["1","2","3","05","07","08"]` (padding from each range's start).
fn range_list(set: &str, inside: &str) -> Result<Vec<String>, HostSetError> {
    let bad = |item: &str| HostSetError::BadRange(set.to_owned(), item.to_owned());
    let mut values = Vec::new();
    for item in inside.split(',') {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        let digits = |s: &str| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(lo) || !digits(hi) {
            return Err(bad(item));
        }
        let (a, b) = (lo.parse::<u64>().map_err(|_| bad(item))?, hi.parse::<u64>().map_err(|_| bad(item))?);
        if b < a {
            return Err(bad(item));
        }
        if (b - a) as usize >= MAX_UNFOLDED || values.len() + (b - a) as usize >= MAX_UNFOLDED {
            return Err(HostSetError::TooMany(set.to_owned()));
        }
        let pad = padding(lo);
        values.extend((a..=b).map(|n| format!("{n:0pad$}")));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_like_clustershell() {
        let hosts: Vec<String> = (1..=100).map(|i| format!("h{i}")).collect();
        assert_eq!(fold(&hosts), "h[1-100]");
        let mut web: Vec<String> = (1..=40).map(|i| format!("web{i:02}")).collect();
        web.push("web42".into());
        web.push("db-main".into());
        assert_eq!(fold(&web), "db-main,web[01-40,42]");
        assert_eq!(fold(&["n3.example.com", "n1.example.com", "n2.example.com"]), "n[1-3].example.com");
        assert_eq!(fold(&["h7"]), "h7");
        assert_eq!(fold(&["a1", "a01", "a2"]), "a01,a[1-2]");
        assert_eq!(fold::<&str>(&[]), "");
    }

    #[test]
    fn unfolds_and_refuses_what_it_cannot_read() {
        assert_eq!(unfold("web[01-03,05],db").unwrap(), ["web01", "web02", "web03", "web05", "db"]);
        assert_eq!(unfold("r[1-2]n[1-2]").unwrap(), ["r1n1", "r1n2", "r2n1", "r2n2"]);
        assert!(matches!(unfold("h[1-"), Err(HostSetError::Unbalanced(_))));
        assert!(matches!(unfold("h[3-1]"), Err(HostSetError::BadRange(..))));
        assert!(matches!(unfold("h[a-b]"), Err(HostSetError::BadRange(..))));
        assert!(matches!(unfold("h[1-99999999999]"), Err(HostSetError::TooMany(_))));
        assert!(matches!(unfold("h[1-5000],g[1-6000]"), Err(HostSetError::TooMany(_))));
        assert!(is_folded("h[1-20]") && is_folded("web[01,03]x") && !is_folded("web[ab]") && !is_folded("web*"));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn alias() -> impl Strategy<Value = String> {
        prop_oneof![
            ("[a-c]{1,3}", 0u64..300, "(|\\.x|-y)").prop_map(|(p, n, s)| format!("{p}{n}{s}")),
            ("[a-c]{1,3}", 0u64..150).prop_map(|(p, n)| format!("{p}{n:03}")),
            ("[a-c]{1,3}", 0u64..120).prop_map(|(p, n)| format!("{p}{n:02}")),
            "[a-z][a-z._-]{0,6}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

        /// Fold then unfold gives back exactly the set folded.
        #[test]
        fn fold_then_unfold_is_identity(aliases in proptest::collection::vec(alias(), 0..60)) {
            let folded = fold(&aliases);
            let mut back = unfold(&folded).map_err(|e| TestCaseError::fail(format!("{folded}: {e}")))?;
            back.sort();
            let mut want = aliases.clone();
            want.sort();
            want.dedup();
            prop_assert_eq!(back, want, "folded: {}", folded);
        }
    }
}
