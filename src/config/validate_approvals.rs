//! Validation of the `approvals:` section of `policy.yml`: the approver page's address and the
//! notification hook (`approvals.notify`), with file:line:col errors like the rest of the
//! policy.
//!
//! Owns: turning `RawApprovals` into `ApprovalSettings`: URLs are absolute `http://` or
//! `https://` with a host and no user or password in them, header names and values are
//! what HTTP accepts (an `https://` receiver is verified against the system's CA store, or
//! `SSL_CERT_FILE`). Pure like the rest of validation: nothing is contacted here. Never
//! puts a header value into a diagnostic (it may be the bridge's credential).

use super::Secret;
use super::Severity;
use super::locate::{Locator, Pos};
use super::raw::RawApprovals;
use super::types::{ApprovalSettings, NotifySettings};
use super::validate::{Source, Validator};

impl Validator<'_> {
    pub(super) fn approvals(&mut self, src: &Source, loc: &Locator, raw: &RawApprovals) -> ApprovalSettings {
        let page_url = raw.page_url.as_deref().and_then(|u| {
            let pos = loc.key_after("approvals", 0, "page_url");
            self.http_url(src, pos, "approvals.page_url", u)
        });
        let notify = raw.notify.as_ref().and_then(|n| {
            let pos = loc.key_after("notify", 0, "url");
            let url = self.http_url(src, pos, "approvals.notify.url", &n.url);
            let mut headers = Vec::new();
            for (name, value) in &n.headers {
                let pos = loc.key_after("headers", 0, name);
                let key = format!("approvals.notify.headers.{name}");
                if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    self.push(Severity::Error, src, pos, key, format!("{name:?} is not a valid HTTP header name"));
                } else if reqwest::header::HeaderValue::from_str(value).is_err() {
                    // The value itself is not shown: it is usually a token.
                    let msg = "the value is not a valid HTTP header value (control characters or non-ASCII)";
                    self.push(Severity::Error, src, pos, key, msg.into());
                } else if is_framing_header(name) {
                    let msg = format!("{name} is set by the HTTP client itself; remove it");
                    self.push(Severity::Error, src, pos, key, msg);
                } else {
                    headers.push((name.clone(), Secret::new(value.clone())));
                }
            }
            url.map(|url| NotifySettings { url, headers })
        });
        ApprovalSettings { page_url, notify }
    }

    /// `text` when it is an absolute http(s) URL with a host and no credentials; otherwise an
    /// error at `pos` and `None`.
    fn http_url(&mut self, src: &Source, pos: Pos, key: &str, text: &str) -> Option<String> {
        match url_problem(text) {
            Some(message) => {
                self.push(Severity::Error, src, pos, key.to_owned(), message);
                None
            }
            None => Some(text.to_owned()),
        }
    }
}

/// What is wrong with `text` as the address of an HTTP receiver or page, if anything.
fn url_problem(text: &str) -> Option<String> {
    match reqwest::Url::parse(text) {
        Err(e) => Some(format!("{text:?} is not a URL: {e}")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!("{text:?} is not an http:// or https:// URL")),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some(format!("{text:?} has no host")),
        // Credentials in a URL end up in logs and in the links approvers are sent.
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            Some("a user or password in the URL is not allowed; use approvals.notify.headers".into())
        }
        Ok(_) => None,
    }
}

/// Headers the client computes from the body and the URL: a configured one would contradict it.
fn is_framing_header(name: &str) -> bool {
    ["content-length", "transfer-encoding", "host", "connection", "content-type"]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::{is_framing_header, url_problem};

    #[test]
    fn only_absolute_http_urls_without_credentials_pass() {
        assert_eq!(url_problem("http://127.0.0.1:9/hook"), None);
        assert_eq!(url_problem("https://gw.example/approvals/ui?x=1"), None);
        for bad in ["ftp://x/y", "file:///etc/passwd", "127.0.0.1:9/hook", "", "https://user:pw@chat.example/"] {
            assert!(url_problem(bad).is_some(), "{bad:?} must be refused");
        }
        assert!(is_framing_header("Content-Length") && !is_framing_header("Authorization"));
    }
}
