//! Path judging: the one place a path argument is read the way the shell and the kernel
//! will read it, before any pattern sees it.
//!
//! A path argument is taken after quote removal (`ShellWord::literal`). It is refused when it
//! contains a `..` component, a brace expansion, an expansion policy cannot read (parameter,
//! command, arithmetic, `~`, ANSI-C quoting), an extglob pattern, or a control or invisible
//! character (`text::find_invisible`). Otherwise it is
//! normalized lexically (`//` and `/./` collapse, a trailing `/` goes) and the normalized
//! path is what a rule's pattern must match. `..foo` is a file name, not a traversal: only a
//! component that is exactly `..` climbs.
//!
//! A glob argument (`/var/log/*.log`) is allowed only when every path it can expand to lies
//! under the pattern: either the glob is the pattern itself, or the pattern is a tree
//! (`P/*`) and the glob's literal directory (what precedes its first glob character) is `P`
//! or lies under it. No glob component may start with `.` (`.*` matches `..`).
//!
//! What stays outside: a symlink on the host inside an allowed tree that points outside it.
//! Commands are judged as text before they reach the host, so nothing here can resolve it.
//!
//! File transfers (`files:` rules) judge a remote path with `transfer_path` (absolute and
//! already normalized, or refused) and match it with `TreeGlob` (`*` stays within one
//! directory, `**` crosses directories); the path the host resolves (SFTP `realpath`) is
//! judged again the same way, which closes the symlink gap for transfers.
//!
//! Owns: `judge`, `normalize`, `JudgedPath::allowed_by`, `transfer_path`, `TreeGlob`.
//! Never does IO.

use super::rules::Pattern;
use super::shell::ShellWord;

/// A path argument that passed judging: its normalized text and whether it is a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgedPath {
    pub normalized: String,
    pub glob: bool,
}

/// Reads one path argument as the shell will; `Err` is a denial reason naming it.
pub fn judge(word: &ShellWord) -> Result<JudgedPath, String> {
    let shown = &word.raw;
    let Some(literal) = word.literal.as_deref() else {
        return Err(format!(
            "path argument `{shown}` uses an expansion (parameter, command, arithmetic, `~` or $'…') whose result policy cannot read"
        ));
    };
    if word.braces {
        return Err(format!("path argument `{shown}` uses brace expansion, which can produce other paths"));
    }
    if word.extglob {
        return Err(format!(
            "path argument `{shown}` uses an extglob pattern (`@(…)`, `?(…)`, `*(…)`, `+(…)`, `!(…)`), which can match `..`"
        ));
    }
    let normalized = normalize(literal).map_err(|why| format!("path argument `{shown}` {why}"))?;
    let glob = word.expands;
    if glob && normalized.split('/').any(|c| c.starts_with('.') && c.contains(GLOB_CHARS)) {
        return Err(format!("path argument `{shown}` has a glob component starting with `.`, which can match `..`"));
    }
    Ok(JudgedPath { normalized, glob })
}

const GLOB_CHARS: [char; 3] = ['*', '?', '['];

/// Lexical normalization: `..` components refused, `//` and `/./` collapsed, a trailing `/`
/// dropped (except for `/` itself). `Err` says why in words that follow "path argument X".
pub fn normalize(path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("is empty".into());
    }
    if let Some(c) = super::text::find_invisible(path, false) {
        return Err(format!("contains the control or invisible character {}", super::text::code_point(c)));
    }
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err("contains a `..` component, which climbs out of its directory".into()),
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    Ok(match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    })
}

/// A remote path for a file transfer: absolute, and written exactly as its normalized form
/// (a `..` component, `//`, `/./`, a trailing `/`, NUL or a control character is refused,
/// not repaired, so what the caller sees is what is judged).
pub fn transfer_path(path: &str) -> Result<(), TransferPathError> {
    if !path.starts_with('/') {
        return Err(TransferPathError::NotAbsolute(format!("remote path {path:?} is not absolute")));
    }
    let normalized =
        normalize(path).map_err(|why| TransferPathError::Refused(format!("remote path {path:?} {why}")))?;
    if normalized != path {
        return Err(TransferPathError::NotNormalized(format!(
            "remote path {path:?} is not normalized (it would be {normalized:?}); pass that form"
        )));
    }
    Ok(())
}

/// Why `transfer_path` refused a path. `Refused` is the policy's refusal (a `..` component,
/// a control character): a denial. The others are the caller's spelling to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferPathError {
    #[error("{0}")]
    NotAbsolute(String),
    #[error("{0}")]
    NotNormalized(String),
    #[error("{0}")]
    Refused(String),
}

/// A `files:` pattern: `*`, `?` and `[…]` stay within one path component, `**` crosses
/// components (`/var/log/**` matches everything under /var/log).
#[derive(Debug, Clone)]
pub struct TreeGlob {
    pub source: String,
    matcher: globset::GlobMatcher,
}

impl TreeGlob {
    pub fn new(source: &str) -> Result<Self, String> {
        if !source.starts_with('/') {
            return Err(format!("{source:?} is not an absolute path pattern"));
        }
        if source.split('/').any(|c| c == "..") {
            return Err(format!("{source:?} contains a `..` component"));
        }
        let glob = globset::GlobBuilder::new(source)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("invalid pattern {source:?}: {e}"))?;
        Ok(Self { source: source.to_owned(), matcher: glob.compile_matcher() })
    }

    /// Whether the (already `transfer_path`-checked) path matches.
    pub fn matches(&self, path: &str) -> bool {
        self.matcher.is_match(path)
    }
}

impl JudgedPath {
    /// Whether every path this argument can name matches `pattern`.
    pub fn allowed_by(&self, pattern: &Pattern) -> bool {
        if !self.glob {
            return pattern.matches(&self.normalized);
        }
        if pattern.source == self.normalized {
            return true;
        }
        let Some(tree) = pattern.source.strip_suffix("/*").or_else(|| pattern.source.strip_suffix("/**")) else {
            return false;
        };
        // The directory every expansion lies under: the text before the first glob
        // character, cut back to its last `/`.
        let first_glob = self.normalized.find(GLOB_CHARS).unwrap_or(self.normalized.len());
        let Some(slash) = self.normalized[..first_glob].rfind('/') else {
            return false;
        };
        let dir = if slash == 0 { "/" } else { &self.normalized[..slash] };
        // fnmatch `*` crosses `/`: if the tree's root matches `dir`, or the whole tree pattern
        // does, then `tree/*` matches every `dir/…`.
        Pattern::new(tree).is_ok_and(|t| t.matches(dir)) || pattern.matches(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_collapses_and_refuses_climbing() {
        assert_eq!(normalize("/var//log/./apt/").as_deref(), Ok("/var/log/apt"));
        assert_eq!(normalize("/").as_deref(), Ok("/"));
        assert_eq!(normalize("./a//b").as_deref(), Ok("a/b"));
        assert_eq!(normalize("/var/log/..foo").as_deref(), Ok("/var/log/..foo"));
        assert!(normalize("/var/log/..").is_err());
        assert!(normalize("/var/log/../etc").is_err());
        assert!(normalize("a/\u{1}b").is_err());
        assert!(normalize("").is_err());
    }

    #[test]
    fn transfer_paths_must_be_absolute_and_normalized() {
        assert!(transfer_path("/srv/app/releases/v1.tar").is_ok());
        assert!(transfer_path("/var/log/..foo").is_ok(), "`..foo` is a name");
        for bad in ["srv/x", "/srv/../etc/passwd", "/srv//x", "/srv/./x", "/srv/x/", "/srv/\u{0}x", ""] {
            assert!(transfer_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tree_globs_keep_star_within_one_directory() {
        let one = TreeGlob::new("/var/log/*").unwrap();
        assert!(one.matches("/var/log/syslog"));
        assert!(!one.matches("/var/log/nginx/access.log"));
        let tree = TreeGlob::new("/var/log/**").unwrap();
        assert!(tree.matches("/var/log/nginx/access.log") && tree.matches("/var/log/syslog"));
        assert!(!tree.matches("/var/lib/x") && !tree.matches("/var/logx/y"));
        assert!(TreeGlob::new("var/log/*").is_err() && TreeGlob::new("/var/../etc/*").is_err());
    }

    fn glob(p: &str) -> JudgedPath {
        JudgedPath { normalized: p.into(), glob: true }
    }

    #[test]
    fn globs_only_inside_a_tree_or_identical() {
        let tree = Pattern::new("/var/log/*").unwrap();
        assert!(glob("/var/log/*.log").allowed_by(&tree));
        assert!(glob("/var/log/nginx/*").allowed_by(&tree));
        assert!(!glob("/var/lo*").allowed_by(&tree));
        assert!(!glob("/var/*/x").allowed_by(&tree));
        let exact = Pattern::new("/var/log/*.log").unwrap();
        assert!(glob("/var/log/*.log").allowed_by(&exact));
        assert!(!glob("/var/log/a*").allowed_by(&exact));
        let one = Pattern::new("/etc/?asswd").unwrap();
        assert!(!glob("/etc/*asswd").allowed_by(&one), "a `?` pattern never admits a `*` glob");
        let nested = Pattern::new("/home/*/logs/*").unwrap();
        assert!(glob("/home/alice/logs/*.gz").allowed_by(&nested));
        assert!(!glob("/home/alice/*").allowed_by(&nested));
    }
}
