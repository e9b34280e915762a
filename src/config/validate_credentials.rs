//! The checks of credentials.yml: each entry's login, key and certificate files (inside
//! the keys directory), passphrase, password and become-password secrets, with every
//! problem at its place.
//!
//! Owns: `Validator::credentials` and the secret and key-file lookups hosts share. Never
//! reads a file or a secret itself (through `Environment`), never checks hosts.

use std::collections::BTreeMap;

use super::locate::Locator;
use super::raw::CredentialsFile;
use super::types::*;
use super::validate::{Source, Validator};
use super::{Secret, Severity};

impl Validator<'_> {
    pub fn credentials(&mut self, src: &Source, raw: CredentialsFile) -> BTreeMap<String, Credential> {
        let loc = Locator::new(src.text);
        let mut out = BTreeMap::new();
        for (i, c) in raw.entries.into_iter().enumerate() {
            let at = |key: &str| loc.key_after("name", i, key);
            let key = |k: &str| format!("entries[{i}].{k}");
            if out.contains_key(&c.name) {
                self.push(
                    Severity::Error,
                    src,
                    at("name"),
                    key("name"),
                    format!("duplicate credential name {:?}", c.name),
                );
                continue;
            }
            if c.username.trim().is_empty() {
                self.push(Severity::Error, src, at("username"), key("username"), "username is empty".into());
            }
            let key_path = self.key_file(src, at("key_path"), key("key_path"), c.key_path.as_deref(), "key_path");
            let certificate_path = self.key_file(
                src,
                at("certificate_path"),
                key("certificate_path"),
                c.certificate_path.as_deref(),
                "certificate_path",
            );
            if c.certificate_path.is_some() && c.key_path.is_none() {
                self.push(
                    Severity::Error,
                    src,
                    at("certificate_path"),
                    key("certificate_path"),
                    "a certificate needs the private key it certifies: set key_path".into(),
                );
            }
            let key_passphrase = self.secret(
                src,
                at("key_passphrase_secret"),
                key("key_passphrase_secret"),
                c.key_passphrase_secret.as_deref(),
            );
            let mut password =
                self.secret(src, at("password_secret"), key("password_secret"), c.password_secret.as_deref());
            let become_password = self.become_secret(
                src,
                at("become_password_secret"),
                key("become_password_secret"),
                c.become_password_secret.as_deref(),
            );
            if let Some(inline) = c.password.filter(|p| !p.is_empty())
                && password.is_none()
            {
                self.push(
                    Severity::Warning,
                    src,
                    at("password"),
                    key("password"),
                    "inline plaintext password; prefer password_secret".into(),
                );
                password = Some(Secret::new(inline));
            }
            // A named secret that is missing was reported as missing just above: once is enough.
            if key_path.is_none()
                && password.is_none()
                && !c.use_agent
                && c.key_path.is_none()
                && c.password_secret.is_none()
            {
                self.push(Severity::Error, src, at("name"), key("name"), format!("credential {:?} has no authentication method (key_path, password, password_secret or use_agent)", c.name));
            }
            out.insert(
                c.name.clone(),
                Credential {
                    name: c.name,
                    username: c.username,
                    key_path,
                    certificate_path,
                    key_passphrase,
                    password,
                    use_agent: c.use_agent,
                    become_password,
                },
            );
        }
        out
    }

    /// A `become_password_secret`: one line, because `sudo -S` reads one line and whatever
    /// follows would reach the command's stdin.
    pub(super) fn become_secret(
        &mut self,
        src: &Source,
        pos: super::Pos,
        key: String,
        name: Option<&str>,
    ) -> Option<Secret> {
        let secret = self.secret(src, pos, key.clone(), name)?;
        if secret.expose().contains(['\n', '\r', '\0']) {
            let msg = format!("secret {:?} must be one line (sudo -S reads one line)", name.unwrap_or_default());
            self.push(Severity::Error, src, pos, key, msg);
            return None;
        }
        Some(secret)
    }

    pub(super) fn secret(&mut self, src: &Source, pos: super::Pos, key: String, name: Option<&str>) -> Option<Secret> {
        let name = name.filter(|n| !n.is_empty())?;
        let valid = name.len() <= 100 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            self.push(
                Severity::Error,
                src,
                pos,
                key,
                format!("secret name {name:?} is invalid (1-100 of A-Z a-z 0-9 _ -)"),
            );
            return None;
        }
        match self.env.secret(name) {
            Ok(s) => Some(s),
            Err(why) => {
                self.push(Severity::Error, src, pos, key, why);
                None
            }
        }
    }

    /// A key or certificate file named by a credential, inside the keys directory; `field`
    /// names it in the messages.
    pub(super) fn key_file(
        &mut self,
        src: &Source,
        at: super::locate::Pos,
        key: String,
        value: Option<&str>,
        field: &str,
    ) -> Option<std::path::PathBuf> {
        match self.env.key_path(value.filter(|p| !p.is_empty())?) {
            Ok((path, warning)) => {
                if let Some(w) = warning {
                    self.push(Severity::Warning, src, at, key, w);
                }
                Some(path)
            }
            Err(why) => {
                self.push(Severity::Error, src, at, key, why.replace("key_path", field));
                None
            }
        }
    }
}
