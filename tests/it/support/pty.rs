//! Running the built binary at a real pseudo-terminal (Python's `pty`), for what sshwarden
//! does only at a terminal: questions, colours, live views.

use std::process::Command;

/// Python: run argv[1:-1] in a pty; when `[y/N]` appears and argv[-1] is not empty, type it.
const SCRIPT: &str = r#"
import os, pty, select, sys
answer = sys.argv[-1]
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:-1])
buf, answered = b"", False
while True:
    ready, _, _ = select.select([fd], [], [], 30)
    if not ready:
        break
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    buf += data
    if answer and not answered and b"[y/N]" in buf:
        os.write(fd, answer.encode() + b"\n")
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(buf)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

/// Runs `program args…` at a terminal, answering `answer` to a `[y/N]` question (none when
/// empty). Returns the exit code and everything the terminal showed.
pub fn run(program: &str, args: &[&str], answer: &str) -> (Option<i32>, String) {
    let out = Command::new("python3").args(["-c", SCRIPT, program]).args(args).arg(answer).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}
