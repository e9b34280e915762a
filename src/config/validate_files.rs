//! Validation of the `files:` section of `policy.yml` (transfer directory and rules), with
//! file:line:col errors like the rest of the policy.
//!
//! Owns: turning `RawFiles` into `FilesPolicy`. Pure: the transfer directory is only made
//! absolute here; whether it exists is the transfer's business (it is resolved then).

use super::Severity;
use super::locate::Locator;
use super::raw::RawFiles;
use super::types::{FilesPolicy, Host};
use super::validate::{Source, Validator};
use crate::policy::files::FileRule;
use crate::policy::paths::TreeGlob;
use crate::policy::{Action, Pattern};

impl Validator<'_> {
    pub(super) fn files(&mut self, src: &Source, loc: &Locator, raw: &RawFiles, hosts: &[Host]) -> FilesPolicy {
        let transfer_dir = raw.transfer_dir.as_deref().filter(|d| !d.is_empty()).map(|d| self.env.config_relative(d));
        let mut rules = Vec::new();
        for (i, r) in raw.rules.iter().enumerate() {
            let pos = loc.item_under("files", "rules", i);
            let key = |k: &str| format!("files.rules[{i}].{k}");
            let Some(action) = self.action(src, pos, &key("action"), r.action.as_deref()) else {
                continue;
            };
            let mut errors = Vec::new();
            let mut scope = |list: &[String], k: &str| -> Vec<Pattern> {
                list.iter()
                    .filter_map(|p| {
                        Pattern::new(p).map_err(|e| errors.push((key(k), format!("invalid glob {p:?}: {e}")))).ok()
                    })
                    .collect()
            };
            let aliases = scope(&r.aliases, "aliases");
            let tags = scope(&r.tags, "tags");
            let mut globs = |list: &[String], k: &str| -> Vec<TreeGlob> {
                list.iter().filter_map(|p| TreeGlob::new(p).map_err(|e| errors.push((key(k), e))).ok()).collect()
            };
            let read = globs(&r.read, "read");
            let write = globs(&r.write, "write");
            for (k, message) in errors {
                self.push(Severity::Error, src, pos, k, message);
            }
            if read.is_empty() && write.is_empty() {
                self.push(
                    Severity::Warning,
                    src,
                    pos,
                    key("read"),
                    "rule has no read or write paths; it has no effect".into(),
                );
            }
            if action == Action::Allow && r.max_bytes.is_none() {
                self.push(
                    Severity::Warning,
                    src,
                    pos,
                    key("max_bytes"),
                    "no max_bytes: transfers under this rule are unbounded in size".into(),
                );
            }
            let rule =
                FileRule { index: i, id: r.id.clone(), action, aliases, tags, read, write, max_bytes: r.max_bytes };
            let selects_none =
                !hosts.iter().any(|h| rule.applies_to(&h.subject(&[], &crate::policy::Principal::local())));
            if selects_none {
                self.warn_selects_no_host(src, pos, key("aliases"));
            }
            rules.push(rule);
        }
        if !rules.is_empty() && transfer_dir.is_none() {
            self.push(
                Severity::Warning,
                src,
                loc.key("files", None, 0),
                "files.transfer_dir".into(),
                "no transfer_dir: transfers work only with inline content (local_path is refused)".into(),
            );
        }
        FilesPolicy { transfer_dir, rules }
    }
}
