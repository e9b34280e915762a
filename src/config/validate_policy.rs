//! Validation of `policy.yml`: limits, overrides, network lists, rules, execution and audit
//! settings, with lint warnings (rules with no effect, shadowed allow entries).
//!
//! Owns: the policy half of `Validator`; each `rules:` entry is checked by
//! `validate_rules.rs`, `files:` by `validate_files.rs`. Pure, like the rest of validation.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Severity;
use super::audit_settings::*;
use super::locate::Locator;
use super::raw::{PolicyFile, RawLimits, RawSyslog};
use super::types::*;
use super::validate::{Source, Validator};
use crate::policy::Rule;

impl Validator<'_> {
    pub fn policy(&mut self, src: &Source, raw: PolicyFile, hosts: &[Host]) -> Policy {
        let loc = Locator::new(src.text);
        let limits = self.limits(src, &loc, &raw.limits, "limits");
        let alias_overrides = raw
            .overrides
            .aliases
            .iter()
            .map(|(a, l)| {
                if !hosts.iter().any(|h| &h.alias == a) {
                    self.push(
                        Severity::Warning,
                        src,
                        loc.key(a, None, 0),
                        format!("overrides.aliases.{a}"),
                        format!("no host has alias {a:?}"),
                    );
                }
                (a.clone(), self.limits(src, &loc, l, &format!("overrides.aliases.{a}")))
            })
            .collect();
        let tag_overrides = raw
            .overrides
            .tags
            .iter()
            .map(|(t, l)| (t.clone(), self.limits(src, &loc, l, &format!("overrides.tags.{t}"))))
            .collect();
        let network = self.network(src, &loc, &raw.network);
        let rules: Vec<Rule> =
            raw.rules.iter().enumerate().filter_map(|(i, r)| self.rule(src, &loc, i, r, hosts)).collect();
        let files = self.files(src, &loc, &raw.files, hosts);
        let approvals = self.approvals(src, &loc, &raw.approvals);
        let e = raw.execution;
        let d = Execution::default();
        let execution = Execution {
            max_running_tasks: e.max_running_tasks.unwrap_or(d.max_running_tasks).max(1),
            max_queued_tasks: e.max_queued_tasks.unwrap_or(d.max_queued_tasks),
            max_sessions_per_connection: e
                .max_sessions_per_connection
                .unwrap_or(d.max_sessions_per_connection)
                .clamp(1, 64),
            connection_idle_seconds: e.connection_idle_seconds.unwrap_or(d.connection_idle_seconds),
            keepalive_seconds: e.keepalive_seconds.unwrap_or(d.keepalive_seconds).max(1),
            output_memory_budget_bytes: e
                .output_memory_budget_bytes
                .unwrap_or(d.output_memory_budget_bytes)
                .max(64 * 1024),
            max_fanout_hosts: e.max_fanout_hosts.unwrap_or(d.max_fanout_hosts).max(1),
            max_concurrent_handshakes: e
                .max_concurrent_handshakes
                .unwrap_or(d.max_concurrent_handshakes)
                .clamp(1, 4096),
            dns_timeout_ms: e.dns_timeout_ms.unwrap_or(d.dns_timeout_ms).clamp(50, 30_000),
        };
        let redact_output = raw
            .redact_output
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match regex::Regex::new(r) {
                Ok(re) => Some(re),
                Err(e) => {
                    self.push(
                        Severity::Error,
                        src,
                        loc.key("redact_output", None, 0),
                        format!("redact_output[{i}]"),
                        format!("invalid regex: {e}"),
                    );
                    None
                }
            })
            .collect();
        let known_hosts_path = raw
            .known_hosts_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .map_or_else(|| self.env.default_known_hosts(), |p| self.env.config_relative(p));
        let audit_path = raw
            .audit
            .path
            .as_deref()
            .map_or_else(|| self.env.config_relative("audit.jsonl"), |p| self.env.config_relative(p));
        let auth = raw.auth.as_ref().map(|a| self.auth(src, &loc, a));
        if auth.is_none() {
            for r in rules.iter().filter(|r| !r.principals.is_empty() || !r.groups.is_empty()) {
                let msg = "principals/groups select callers, but without `auth:` every caller is `local` (stdio, the CLI) or unnamed (HTTP)";
                let pos = loc.key("action", None, r.index);
                self.push(Severity::Warning, src, pos, format!("rules[{}].principals", r.index), msg.to_owned());
            }
        }
        let quotas = raw.limits.quotas.as_ref().map(|q| self.quotas(src, &loc, q)).unwrap_or_default();
        Policy {
            auth,
            quotas,
            known_hosts_path,
            limits,
            alias_overrides,
            tag_overrides,
            network,
            rules,
            execution,
            audit: AuditSettings {
                path: audit_path,
                redact_commands: raw.audit.redact_commands,
                syslog: raw.audit.syslog.as_ref().and_then(|s| self.syslog(src, &loc, s)),
            },
            redact_output,
            files,
            approvals,
        }
    }

    fn syslog(&mut self, src: &Source, loc: &Locator, raw: &RawSyslog) -> Option<SyslogSettings> {
        let bad = |this: &mut Self, key: &str, msg: String| {
            this.push(Severity::Error, src, loc.key(key, None, 0), format!("audit.syslog.{key}"), msg);
        };
        let host_port = |rest: &str| {
            rest.rsplit_once(':')
                .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
                .map(|_| rest.to_owned())
        };
        let tls_ca = raw.tls.as_ref().map(|t| self.env.config_relative(&t.ca_path));
        let transport = match raw.address.split_once("://") {
            Some(("tcp", rest)) => host_port(rest).map(SyslogTransport::Tcp),
            Some(("udp", rest)) => host_port(rest).map(SyslogTransport::Udp),
            Some(("tcp+tls", rest)) => match (host_port(rest), tls_ca.clone()) {
                (Some(hp), Some(ca)) => Some(SyslogTransport::TcpTls(hp, ca)),
                (Some(_), None) => {
                    bad(self, "address", "tcp+tls:// needs tls: {ca_path: …}".into());
                    return None;
                }
                (None, _) => None,
            },
            _ => raw
                .address
                .strip_prefix("unix:")
                .filter(|p| p.starts_with('/'))
                .map(|p| SyslogTransport::Unix(p.into())),
        };
        let Some(transport) = transport else {
            let msg = format!(
                "{:?} is not tcp://HOST:PORT, tcp+tls://HOST:PORT, udp://HOST:PORT or unix:/ABSOLUTE/PATH",
                raw.address
            );
            bad(self, "address", msg);
            return None;
        };
        if tls_ca.is_some() && !matches!(transport, SyslogTransport::TcpTls(..)) {
            bad(self, "tls", "tls applies only to a tcp+tls:// address".into());
        }
        let facility_name = raw.facility.as_deref().unwrap_or("authpriv");
        let Some(&(_, facility)) = SYSLOG_FACILITIES.iter().find(|(n, _)| *n == facility_name) else {
            let names: Vec<&str> = SYSLOG_FACILITIES.iter().map(|(n, _)| *n).collect();
            bad(self, "facility", format!("{facility_name:?} is not one of {}", names.join(", ")));
            return None;
        };
        let app_name = raw.app_name.clone().unwrap_or_else(|| "sshwarden".into());
        // RFC 5424 APP-NAME: 1-48 printable US-ASCII characters, no space.
        if app_name.is_empty() || app_name.len() > 48 || !app_name.chars().all(|c| c.is_ascii_graphic()) {
            bad(self, "app_name", format!("{app_name:?} must be 1-48 printable ASCII characters without spaces"));
            return None;
        }
        Some(SyslogSettings {
            transport,
            app_name,
            facility,
            required: raw.required,
            spool_bytes: raw.spool_bytes.unwrap_or(64 * 1024 * 1024),
        })
    }

    fn limits(&mut self, src: &Source, loc: &Locator, raw: &RawLimits, key: &str) -> LimitsLayer {
        if key != "limits" && raw.quotas.is_some() {
            let msg = "quotas belong to callers, not hosts: set them in the top-level limits".to_owned();
            self.push(Severity::Error, src, loc.key("quotas", None, 0), format!("{key}.quotas"), msg);
        }
        if raw.host_key_auto_add == Some(true) {
            self.push(
                Severity::Error,
                src,
                loc.key("host_key_auto_add", None, 0),
                format!("{key}.host_key_auto_add"),
                "host keys are never added automatically; remove this key".into(),
            );
        }
        if raw.require_known_host == Some(false) {
            self.push(
                Severity::Error,
                src,
                loc.key("require_known_host", None, 0),
                format!("{key}.require_known_host"),
                "host keys are always required; remove this key".into(),
            );
        }
        if raw.max_seconds == Some(0) {
            self.push(
                Severity::Error,
                src,
                loc.key("max_seconds", None, 0),
                format!("{key}.max_seconds"),
                "max_seconds must be at least 1".into(),
            );
        }
        if let Some(list) = &raw.deny_substrings {
            for s in list.iter().filter(|s| s.contains('*')) {
                self.push(
                    Severity::Warning,
                    src,
                    loc.key("deny_substrings", None, 0),
                    format!("{key}.deny_substrings"),
                    format!("{s:?} is a plain substring; `*` matches only a literal `*`"),
                );
            }
        }
        let on_output_limit = raw.on_output_limit.as_deref().and_then(|v| match v {
            "truncate" => Some(OnOutputLimit::Truncate),
            "kill" => Some(OnOutputLimit::Kill),
            other => {
                self.push(
                    Severity::Error,
                    src,
                    loc.key("on_output_limit", None, 0),
                    format!("{key}.on_output_limit"),
                    format!("{other:?} is not one of truncate, kill"),
                );
                None
            }
        });
        LimitsLayer {
            max_seconds: raw.max_seconds.filter(|s| *s > 0),
            max_output_bytes: raw.max_output_bytes,
            task_result_ttl: raw.task_result_ttl,
            task_progress_interval: raw.task_progress_interval.map(|s| s.max(1)),
            deny_substrings: raw.deny_substrings.clone(),
            on_output_limit,
            max_inline_output_bytes: raw.max_inline_output_bytes,
            max_result_bytes: raw.max_result_bytes,
            approval_timeout_seconds: raw.approval_timeout_seconds.map(|s| s.max(1)),
        }
    }

    fn network(&mut self, src: &Source, loc: &Locator, raw: &super::raw::RawNetwork) -> Network {
        let mut parse = |list: &[String], key: &str, ips_only: bool| -> Vec<IpNet> {
            list.iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    let pos = loc.key(key, None, 0);
                    let net = s.parse::<IpAddr>().map(IpNet::from).or_else(|_| s.parse::<IpNet>().map(|n| n.trunc()));
                    match net {
                        Ok(n) if ips_only && n.prefix_len() != n.max_prefix_len() => {
                            self.push(
                                Severity::Warning,
                                src,
                                pos,
                                format!("network.{key}[{i}]"),
                                format!("{s:?} is a CIDR in an IP list; honoured as a CIDR"),
                            );
                            Some(n)
                        }
                        Ok(n) => Some(n),
                        Err(_) => {
                            self.push(
                                Severity::Error,
                                src,
                                pos,
                                format!("network.{key}[{i}]"),
                                format!("{s:?} is not an IP address or CIDR"),
                            );
                            None
                        }
                    }
                })
                .collect()
        };
        let mut allow = parse(&raw.allow_ips, "allow_ips", true);
        allow.extend(parse(&raw.allow_cidrs, "allow_cidrs", false));
        let mut block = parse(&raw.block_ips, "block_ips", true);
        block.extend(parse(&raw.block_cidrs, "block_cidrs", false));
        for a in &allow {
            if let Some(b) = block.iter().find(|b| b.contains(a)) {
                self.push(
                    Severity::Warning,
                    src,
                    loc.key("allow_cidrs", None, 0),
                    "network".into(),
                    format!("allow entry {a} is entirely inside block entry {b}; blocks win, so it allows nothing"),
                );
            }
        }
        Network { allow, block }
    }
}
