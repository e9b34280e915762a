//! `become`: the remote command line that runs an admitted command as another user through
//! sudo (or doas), and the watch that ends such a task at once when sudo refuses.
//!
//! Owns: the one place a judged command is wrapped in `sudo`/`doas` words, and the English refusal messages
//! sudo and doas print (matched on stderr before the command's own output; sudo is not run
//! under `LC_ALL=C`, because that would also change the command's locale). Never changes
//! what the policy judged: a single simple command becomes sudo's own argv word for word,
//! anything else runs as `/bin/sh -c '<the judged text>'`. Never puts a password on a
//! command line: `sudo -S -v` reads it from the channel's stdin, at its own nonce prompt.

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use crate::policy::shell::simple_commands;
use crate::policy::{Become, BecomeMethod};
use crate::runbook::shell_word;
use crate::ssh::Sink;
use crate::tasks::ring::Stream;

/// Stderr lines examined for a refusal: sudo prints it before the command starts.
const WATCH_LINES: usize = 8;
pub(super) const WATCH_BYTES: usize = 4096;

/// The literal words of `command` when it is exactly one simple command that sudo can run
/// as its own argv with the same meaning the shell gives it: no operators, redirections,
/// assignments, expansions, `~`, comments or extra blanks (the words joined by single
/// spaces must give back the text). Anything else is `None` and goes through `sh -c`.
pub fn plain_argv(command: &str) -> Option<Vec<String>> {
    let cmds = simple_commands(command).ok()?;
    let [cmd] = cmds.as_slice() else { return None };
    if !cmd.constructs.is_empty() || !cmd.enclosing.is_empty() || cmd.argv.is_empty() {
        return None;
    }
    let raw: Vec<&str> = cmd.argv.iter().map(|w| w.raw.as_str()).collect();
    if raw.join(" ") != command.trim() || raw.iter().any(|w| w.contains('~')) {
        return None;
    }
    cmd.argv.iter().map(|w| if w.expands { None } else { w.literal.clone() }).collect()
}

/// The shell variable the login shell reads the prompt nonce into (`command_line`).
const PROMPT_VARIABLE: &str = "sshwarden_prompt";

/// How sudo is given its password: the login shell reads a prompt nonce from stdin and
/// `sudo -S -v` asks with it (through `SUDO_PROMPT`, never argv: a command line is
/// world-readable in /proc, the environment of setuid sudo is not), authenticating and
/// running nothing. sshwarden writes the password only in answer to that exact prompt.
pub fn validate_line() -> String {
    let v = PROMPT_VARIABLE;
    format!("IFS= read -r {v} && SUDO_PROMPT=\"${v}\" sudo -S -v")
}

/// sudo's password for one run: a fresh 128-bit prompt nonce (written first, for the shell
/// of `validate_line` to read) and the password line, written only in answer to exactly
/// that prompt. The password bytes are zeroed when it is dropped.
pub struct PasswordPrompt {
    prompt: String,
    first: String,
    answer: Vec<u8>,
}

impl PasswordPrompt {
    pub fn new(password: &str) -> Self {
        let prompt = format!("sshwarden-{:032x}:", rand::random::<u128>());
        let first = format!("{prompt}\n");
        Self { prompt, first, answer: format!("{password}\n").into_bytes() }
    }

    /// The run's stdin: the nonce now, the password only at the prompt, within `within`.
    pub fn input(&self, within: std::time::Duration) -> crate::ssh::Input<'_> {
        crate::ssh::Input::OnPrompt {
            first: self.first.as_bytes(),
            prompt: self.prompt.as_bytes(),
            answer: &self.answer,
            within,
        }
    }
}

impl Drop for PasswordPrompt {
    fn drop(&mut self) {
        // Not left in freed memory longer than needed.
        self.answer.fill(0);
    }
}

/// The remote command line running `command` as `b.user`, with `-n` so sudo never waits.
/// `with_password` (sudo only): `validate_line` first, then the command under `sudo -n` on
/// the credentials it cached for this shell, so the command never reads the password and
/// no argv holds the nonce. `; exit $?` keeps the shell as the parent of both sudos (bash
/// would exec the last command of a list, and sudo's cached credentials belong to the
/// parent).
pub fn command_line(command: &str, b: &Become, with_password: bool) -> String {
    let mut words: Vec<String> = vec![b.method.name().to_owned(), "-n".to_owned()];
    words.extend(["-u".to_owned(), shell_word(&b.user), "--".to_owned()]);
    match plain_argv(command) {
        Some(argv) => words.extend(argv.iter().map(|w| shell_word(w))),
        None => words.extend(["/bin/sh".to_owned(), "-c".to_owned(), shell_word(command)]),
    }
    let run = words.join(" ");
    if with_password && b.method == BecomeMethod::Sudo { format!("{} && {run}; exit $?", validate_line()) } else { run }
}

/// Why sudo or doas refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NeedsPassword,
    BadPassword,
    NotInSudoers,
    NotPermitted,
    NeedsTty,
    Prompt,
    UnknownUser,
    NotInstalled,
}

/// The refusal a stderr line reports, if it is one of sudo's or doas's.
pub fn classify(line: &str) -> Option<Refusal> {
    let l = line.trim();
    let ours =
        ["sudo:", "doas:", "[sudo]", "Sorry, try again", "Sorry, user ", "Password:"].iter().any(|p| l.starts_with(p))
            || l.contains(": sudo: ")
            || l.contains(": doas: ");
    if !ours {
        return None;
    }
    let has = |s: &str| l.contains(s);
    Some(
        if has("sudo: not found")
            || has("sudo: command not found")
            || has("doas: not found")
            || has("doas: command not found")
        {
            Refusal::NotInstalled
        } else if has("a password is required") {
            Refusal::NeedsPassword
        } else if has("is not in the sudoers file") {
            Refusal::NotInSudoers
        } else if has("must have a tty") || has("a terminal is required") || has("no tty present") {
            Refusal::NeedsTty
        } else if has("Sorry, try again")
            || has("incorrect password")
            || has("no password was provided")
            || has("Authentication failed")
        {
            Refusal::BadPassword
        } else if has("unknown user") {
            Refusal::UnknownUser
        } else if has("is not allowed to")
            || has("may not run sudo")
            || has("Operation not permitted")
            || has("not permitted")
        {
            Refusal::NotPermitted
        } else if has("[sudo] password for") || l.starts_with("Password:") || l.ends_with("assword:") {
            Refusal::Prompt
        } else {
            return None;
        },
    )
}

/// What the operator can change, naming the sudoers line or secret that is missing.
/// `command`: the judged command, or `None` for a check of sudo itself (preflight).
pub fn hint(r: Refusal, b: &Become, login: &str, command: Option<&str>, had_password: bool) -> String {
    let (m, user) = (b.method.name(), &b.user);
    let what = match command.map(plain_argv) {
        None => "/full/path/of/each command the become rules allow".to_owned(),
        Some(Some(argv)) => format!("/full/path/of/{}", argv.join(" ")),
        Some(None) => "/bin/sh -c * (a compound command runs through /bin/sh; that line lets any shell code run, prefer single commands)".to_owned(),
    };
    let line = match b.method {
        BecomeMethod::Sudo => format!("`{login} ALL=({user}) NOPASSWD: {what}` in /etc/sudoers.d/"),
        BecomeMethod::Doas => format!("`permit nopass {login} as {user} cmd …` in /etc/doas.conf"),
    };
    match r {
        Refusal::NeedsPassword if b.method == BecomeMethod::Doas => {
            format!("doas cannot be given a password without a terminal: add {line}")
        }
        Refusal::NeedsPassword if had_password => format!(
            "sudo accepted the password but did not keep it for the command (sudoers `timestamp_timeout=0`?): allow a cached credential for {login}, or add {line}"
        ),
        Refusal::NeedsPassword => format!(
            "sudo wants a password for this command: add {line}, or set become_password_secret on the host or its credential"
        ),
        Refusal::BadPassword if had_password => {
            "the become password was refused: check the secret named by become_password_secret".to_owned()
        }
        Refusal::BadPassword => format!("{m} asked for a password: add {line} or set become_password_secret"),
        Refusal::NotInSudoers => format!("{login} has no sudoers entry on this host: add {line}"),
        Refusal::NotPermitted => format!("{m} does not let {login} run this as {user}: add {line}"),
        Refusal::NeedsTty => {
            format!("sudoers requires a terminal: add `Defaults:{login} !requiretty` in /etc/sudoers.d/")
        }
        Refusal::Prompt => {
            format!("{m} prompted for input sshwarden does not answer (a PAM module or passprompt setting): add {line}")
        }
        Refusal::UnknownUser => format!("user {user:?} does not exist on this host: fix `become` in policy.yml"),
        Refusal::NotInstalled => format!("{m} is not installed on this host (or not on the login user's PATH)"),
    }
}

/// A sink in front of the task's (masking) sink that reads the first stderr lines of a
/// `become` command: a refusal is recorded and `cancel` ends the command at once.
pub struct Watch<'a> {
    inner: &'a dyn Sink,
    cancel: CancellationToken,
    state: Mutex<WatchState>,
}

#[derive(Default)]
struct WatchState {
    line: Vec<u8>,
    lines: usize,
    bytes: usize,
    done: bool,
    refusal: Option<(Refusal, String)>,
}

impl<'a> Watch<'a> {
    pub fn new(inner: &'a dyn Sink, cancel: CancellationToken) -> Self {
        Self { inner, cancel, state: Mutex::new(WatchState::default()) }
    }

    /// The token the command runs under (cancelled on a refusal or with the task).
    pub fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The first refusal seen, with sudo's line.
    pub fn refusal(&self) -> Option<(Refusal, String)> {
        self.lock().refusal.clone()
    }

    /// Passes on (and judges) a last stderr line without a newline.
    pub fn finish(&self) {
        let rest = {
            let mut s = self.lock();
            s.done = true;
            let rest = std::mem::take(&mut s.line);
            self.judge(&mut s, &rest);
            rest
        };
        if !rest.is_empty() {
            self.inner.write(Stream::Stderr, &rest);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a refusal in `line` (the line itself is passed on by the caller).
    fn judge(&self, s: &mut WatchState, line: &[u8]) {
        let Some(r) = classify(&String::from_utf8_lossy(line)) else { return };
        if s.refusal.is_none() {
            s.refusal = Some((r, String::from_utf8_lossy(line).trim().to_owned()));
        }
        self.cancel.cancel();
    }
}

impl Sink for Watch<'_> {
    fn write(&self, stream: Stream, data: &[u8]) {
        let mut pass: Vec<u8> = Vec::new();
        {
            let mut s = self.lock();
            if stream == Stream::Stderr && !s.done {
                s.line.extend_from_slice(data);
                s.bytes += data.len();
                while let Some(nl) = s.line.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = s.line.drain(..=nl).collect();
                    s.lines += 1;
                    self.judge(&mut s, &line);
                    pass.extend_from_slice(&line);
                }
                // A prompt has no newline: judge a pending line that looks like one.
                let pending = String::from_utf8_lossy(&s.line).trim_end().to_owned();
                if pending.ends_with(':') && classify(&pending).is_some() {
                    let line = std::mem::take(&mut s.line);
                    self.judge(&mut s, &line);
                    pass.extend_from_slice(&line);
                }
                if s.lines >= WATCH_LINES || s.bytes >= WATCH_BYTES {
                    s.done = true;
                    pass.append(&mut s.line);
                }
                drop(s);
                if !pass.is_empty() {
                    self.inner.write(Stream::Stderr, &pass);
                }
                return;
            }
            if stream != Stream::Stderr && !s.done {
                // The command's own output began: sudo is past its checks.
                s.done = true;
                pass.append(&mut s.line);
            }
        }
        if !pass.is_empty() {
            self.inner.write(Stream::Stderr, &pass);
        }
        self.inner.write(stream, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(method: BecomeMethod) -> Become {
        Become { user: "root".into(), method }
    }

    #[test]
    fn a_single_simple_command_is_sudo_argv_word_for_word() {
        let b = root(BecomeMethod::Sudo);
        assert_eq!(command_line("systemctl restart nginx", &b, false), "sudo -n -u root -- systemctl restart nginx");
        assert_eq!(
            command_line("/usr/bin/id -u", &b, true),
            "IFS= read -r sshwarden_prompt && SUDO_PROMPT=\"$sshwarden_prompt\" sudo -S -v && sudo -n -u root -- /usr/bin/id -u; exit $?"
        );
        // Quotes are removed by the policy's reading and put back for the remote shell.
        assert_eq!(command_line("echo 'a b' \"c'd\"", &b, false), "sudo -n -u root -- echo 'a b' 'c'\\''d'");
        assert_eq!(command_line("id", &root(BecomeMethod::Doas), true), "doas -n -u root -- id");
    }

    #[test]
    fn anything_else_goes_through_sh_c_with_the_exact_text() {
        let b = root(BecomeMethod::Sudo);
        for cmd in [
            "id; whoami",
            "id | cat",
            "id > /dev/null",
            "sleep 300 &",
            "echo $HOME",
            "ls ~root",
            "ls *",
            "FOO=1 env",
            "id  -u",
            "id # note",
            "id && id",
        ] {
            assert_eq!(plain_argv(cmd), None, "{cmd}");
            let line = command_line(cmd, &b, false);
            assert_eq!(line, format!("sudo -n -u root -- /bin/sh -c {}", shell_word(cmd)), "{cmd}");
        }
        assert_eq!(plain_argv("cat /etc/shadow"), Some(vec!["cat".into(), "/etc/shadow".into()]));
    }

    #[test]
    fn refusals_are_recognised_and_other_lines_are_not() {
        let cases = [
            ("sudo: a password is required", Some(Refusal::NeedsPassword)),
            ("swtest is not in the sudoers file.  This incident will be reported.", None),
            ("sudo: swtest is not in the sudoers file.", Some(Refusal::NotInSudoers)),
            ("Sorry, try again.", Some(Refusal::BadPassword)),
            ("sudo: 1 incorrect password attempt", Some(Refusal::BadPassword)),
            ("sudo: sorry, you must have a tty to run sudo", Some(Refusal::NeedsTty)),
            ("[sudo] password for swtest:", Some(Refusal::Prompt)),
            ("Sorry, user swtest is not allowed to execute '/usr/bin/id' as root on h.", Some(Refusal::NotPermitted)),
            ("sudo: unknown user nobody2", Some(Refusal::UnknownUser)),
            ("sh: 1: sudo: not found", Some(Refusal::NotInstalled)),
            ("doas: Operation not permitted", Some(Refusal::NotPermitted)),
            ("ls: cannot access 'x': No such file or directory", None),
        ];
        for (line, want) in cases {
            assert_eq!(classify(line), want, "{line}");
        }
    }
}
