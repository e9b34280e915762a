//! Who a request comes from, as the fronts tell the service: the authenticated caller of an
//! HTTP request (`auth:`), and the one rule that turns a client label into a task owner.
//!
//! Owns: [`Caller`] (set by the HTTP guard after the token was verified, read by the MCP
//! layer from the request's extensions), the `principal=` word of a client label, and
//! [`task_owner`]. Never trusts a principal named by the client itself: only the guard
//! builds a `Caller`, and a label's principal is the last `principal=` word, which the MCP
//! layer appends after everything the client declared.

/// The verified caller of one HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The mapped claim's raw value (e.g. `sub`), the static token's name, or `token` for
    /// the `--token-file` token.
    pub principal: String,
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
    /// SHA-256 of the access token's `jti`, when it has one (audit may carry it).
    pub jti_sha256: Option<String>,
}

impl Caller {
    /// The word added to a client label: `principal=` and the principal with every byte
    /// outside `[A-Za-z0-9._@:+-]` percent-encoded, so a claim cannot add words (a space
    /// followed by `req=` or `principal=`) to the label.
    pub fn label_word(&self) -> String {
        let mut word = String::from("principal=");
        for b in self.principal.bytes() {
            if b.is_ascii_alphanumeric() || b"._@:+-".contains(&b) {
                word.push(b as char);
            } else {
                word.push_str(&format!("%{b:02X}"));
            }
        }
        word
    }
}

/// Who a task belongs to. With a verified principal in the label, the principal (the last
/// `principal=` word), so a person sees their tasks from any client; otherwise the client's
/// identity without the words that change per request (`req=`) or per runbook run (`run=`),
/// so a runbook's caller sees its steps' tasks.
pub fn task_owner(client: &str) -> String {
    if let Some(p) = client.split(' ').rev().find(|w| w.starts_with("principal=")) {
        return p.to_owned();
    }
    client.split(' ').filter(|w| !w.starts_with("req=") && !w.starts_with("run=")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::{Caller, task_owner};

    fn caller(p: &str) -> Caller {
        Caller { principal: p.into(), groups: vec![], scopes: vec![], jti_sha256: None }
    }

    #[test]
    fn a_principal_cannot_add_words_to_the_label() {
        assert_eq!(caller("alice").label_word(), "principal=alice");
        assert_eq!(caller("x req=1 principal=root").label_word(), "principal=x%20req%3D1%20principal%3Droot");
    }

    #[test]
    fn the_owner_is_the_last_principal_else_the_client_without_request_words() {
        assert_eq!(task_owner("claude/1 principal=alice req=7"), "principal=alice");
        // A client that declares a principal in its own name still ends with the verified one.
        assert_eq!(task_owner("x principal=alice/1 principal=bob req=7"), "principal=bob");
        assert_eq!(task_owner("claude/1 req=7 run=r1"), "claude/1");
    }
}
