//! Checks one runbook file into a `Runbook`, every problem with file:line:col: duplicate
//! step ids, templates naming undeclared parameters, bad regexes, types, enums without
//! values, defaults that fail their own checks. Pure: the file's text comes from `load.rs`.

use std::collections::BTreeSet;
use std::path::Path;

use super::Severity;
use super::locate::Locator;
use super::validate::{Source, Validator};
use crate::runbook::raw::{RawStep, RunbookFile};
use crate::runbook::serial::Serial;
use crate::runbook::{Expect, OnFailure, Param, ParamType, Runbook, Step, Template};

impl Validator<'_> {
    pub fn runbook(&mut self, src: &Source, raw: RunbookFile, path: &Path, sha256: String) -> Option<Runbook> {
        let loc = Locator::new(src.text);
        let errors_before = self.error_count();
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let name = raw.name.clone().unwrap_or(stem);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            self.push(
                Severity::Error,
                src,
                loc.key("name", None, 0),
                "name".into(),
                format!("{name:?}: use letters, digits, `-`, `_`, `.`"),
            );
        }
        let params = self.runbook_params(src, &loc, &raw);
        let declared: BTreeSet<&str> = params.iter().map(|p| p.name.as_str()).collect();
        let mut ids = BTreeSet::new();
        let steps = self.runbook_steps(src, &loc, "steps", &raw.steps, &declared, &mut ids);
        let rollback = self.runbook_steps(src, &loc, "rollback", &raw.rollback, &declared, &mut ids);
        if raw.steps.is_empty() {
            self.push(
                Severity::Error,
                src,
                loc.key("steps", None, 0),
                "steps".into(),
                "a runbook needs at least one step".into(),
            );
        }
        let (serial, max_fail_percentage) = self.rolling(src, &loc, &raw);
        let runbook = Runbook {
            name,
            description: raw.description,
            file: path.to_path_buf(),
            sha256,
            params,
            steps,
            rollback,
            serial,
            max_fail_percentage,
        };
        for p in &runbook.params {
            // The default alone, through the same check a given value gets.
            if let Some(d) = &p.default
                && let Err(e) = p.check(d)
            {
                self.push(Severity::Error, src, loc.key("default", None, 0), format!("params.{}.default", p.name), e);
            }
        }
        (self.error_count() == errors_before).then_some(runbook)
    }

    /// The declared parameters: types, enums, patterns, duplicates.
    fn runbook_params(&mut self, src: &Source, loc: &Locator, raw: &RunbookFile) -> Vec<Param> {
        let mut params = Vec::new();
        for (i, p) in raw.params.iter().enumerate() {
            let at = |key: &str| loc.key_after("name", i, key);
            let bad = |this: &mut Self, key: &str, msg: String| {
                this.push(Severity::Error, src, at(key), format!("params[{i}].{key}"), msg)
            };
            let kind = match (p.kind.as_deref().unwrap_or("string"), p.values.is_empty()) {
                ("string", _) => ParamType::String,
                ("integer", _) => ParamType::Integer,
                ("boolean", _) => ParamType::Boolean,
                ("enum", false) => ParamType::Enum(p.values.clone()),
                ("enum", true) => {
                    bad(self, "values", "an enum needs `values: [...]`".into());
                    continue;
                }
                (other, _) => {
                    bad(self, "type", format!("{other:?} is not one of string, integer, boolean, enum"));
                    continue;
                }
            };
            let pattern = match p.pattern.as_deref().map(|r| regex::Regex::new(&format!("^(?:{r})$"))) {
                Some(Err(e)) => {
                    bad(self, "pattern", format!("invalid regex: {e}"));
                    continue;
                }
                Some(Ok(re)) => Some(re),
                None => None,
            };
            if params.iter().any(|q: &Param| q.name == p.name) {
                bad(self, "name", format!("parameter {:?} is declared twice", p.name));
            }
            let default = p.default.as_ref().map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            params.push(Param {
                name: p.name.clone(),
                kind,
                required: p.required,
                default,
                pattern,
                secret: p.secret,
                description: p.description.clone(),
            });
        }
        params
    }

    /// The steps of one section (`steps` or `rollback`); `ids` spans both sections.
    fn runbook_steps(
        &mut self,
        src: &Source,
        loc: &Locator,
        section: &str,
        list: &[RawStep],
        declared: &BTreeSet<&str>,
        ids: &mut BTreeSet<String>,
    ) -> Vec<Step> {
        let mut out = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let key = |k: &str| format!("{section}[{i}].{k}");
            let nth = ids.len();
            let at = |k: &str| loc.key_after("id", nth, k);
            if !ids.insert(s.id.clone()) {
                self.push(Severity::Error, src, at("id"), key("id"), format!("step id {:?} is used twice", s.id));
            }
            let template = |this: &mut Self, k: &str, text: &str| match Template::parse(text) {
                Ok(t) => {
                    for p in t.params().filter(|p| !declared.contains(p)) {
                        this.push(
                            Severity::Error,
                            src,
                            at(k),
                            key(k),
                            format!("{{{{ {p} }}}} is not a declared parameter"),
                        );
                    }
                    Some(t)
                }
                Err(e) => {
                    this.push(Severity::Error, src, at(k), key(k), e);
                    None
                }
            };
            let target = template(self, "target", &s.target);
            let command = template(self, "command", &s.command);
            let stdout_regex = match s.expect.stdout_regex.as_deref().map(regex::Regex::new) {
                Some(Err(e)) => {
                    self.push(
                        Severity::Error,
                        src,
                        at("stdout_regex"),
                        key("expect.stdout_regex"),
                        format!("invalid regex: {e}"),
                    );
                    None
                }
                Some(Ok(r)) => Some(r),
                None => None,
            };
            let on_failure = match s.on_failure.as_deref().unwrap_or("abort") {
                "abort" => OnFailure::Abort,
                "continue" => OnFailure::Continue,
                other => {
                    self.push(
                        Severity::Error,
                        src,
                        at("on_failure"),
                        key("on_failure"),
                        format!("{other:?} is not abort or continue"),
                    );
                    OnFailure::Abort
                }
            };
            if s.max_fail_percentage.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
                self.push(
                    Severity::Error,
                    src,
                    at("max_fail_percentage"),
                    key("max_fail_percentage"),
                    "must be between 0 and 100".into(),
                );
            }
            let (Some(target), Some(command)) = (target, command) else { continue };
            out.push(Step {
                id: s.id.clone(),
                target,
                command,
                expect: Expect { exit: s.expect.exit.clone().unwrap_or_else(|| vec![0]), stdout_regex },
                batch_size: s.batch_size.filter(|b| *b > 0),
                concurrency: s.concurrency.unwrap_or(8).clamp(1, 256),
                max_fail_percentage: s.max_fail_percentage.unwrap_or(0.0),
                timeout_seconds: s.timeout_seconds,
                retries: s.retries.min(10),
                retry_delay_seconds: s.retry_delay_seconds.min(3600),
                on_failure,
            });
        }
        out
    }

    /// The runbook-level `serial:` and `max_fail_percentage`.
    fn rolling(&mut self, src: &Source, loc: &Locator, raw: &RunbookFile) -> (Serial, f64) {
        let serial = match raw.serial.as_ref().map(Serial::parse) {
            None => Serial::default(),
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                self.push(Severity::Error, src, loc.top_level("serial"), "serial".into(), e);
                Serial::default()
            }
        };
        let max_fail = raw.max_fail_percentage.unwrap_or(0.0);
        if !(0.0..=100.0).contains(&max_fail) {
            let at = loc.top_level("max_fail_percentage");
            self.push(Severity::Error, src, at, "max_fail_percentage".into(), "must be between 0 and 100".into());
        } else if raw.max_fail_percentage.is_some() && raw.serial.is_none() {
            let at = loc.top_level("max_fail_percentage");
            let why = "applies between batches: it needs `serial:` (a step's own max_fail_percentage applies within the step)";
            self.push(Severity::Error, src, at, "max_fail_percentage".into(), why.into());
        }
        (serial, max_fail)
    }

    fn error_count(&self) -> usize {
        self.diags.iter().filter(|d| d.severity == Severity::Error).count()
    }
}
