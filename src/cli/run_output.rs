//! What `sshwarden run` prints while hosts run: new output of every task as `host: line`
//! (the `Follower`), or one block per host when it finishes (`host_block`, as `pssh -i`).
//!
//! Owns: reading each task's retained output from where it last stopped (byte offsets into
//! the task's head+tail buffers), whole lines only until the task ends, the colours, and
//! escaping what a host sends (`policy::text::printable`): its bytes never drive the
//! terminal or forge another host's lines.
//! Never starts or stops anything.

use std::io::Write;
use std::sync::Arc;

use console::style;

use crate::policy::text::printable;
use crate::service::fanout::{HostEntry, HostStatus};
use crate::tasks::ring::{HeadTail, inline_text};
use crate::tasks::{Task, TaskState};

/// Bytes read per stream and tick: a chatty host cannot starve the others.
const PAGE: usize = 64 * 1024;

/// Where the printing of one stream stands.
#[derive(Default)]
struct Cursor {
    offset: u64,
    /// The last line's beginning, until its newline (or the end of the task) arrives.
    partial: Vec<u8>,
}

struct Followed {
    alias: String,
    task: Arc<Task>,
    stdout: Cursor,
    stderr: Cursor,
    done: bool,
}

/// Prints the tasks of a fan-out as they produce output.
pub struct Follower {
    colour: bool,
    followed: Vec<Followed>,
}

impl Follower {
    pub fn new(colour: bool) -> Self {
        Self { colour, followed: Vec::new() }
    }

    pub fn follow(&mut self, alias: String, task: Arc<Task>) {
        self.followed.push(Followed { alias, task, stdout: Cursor::default(), stderr: Cursor::default(), done: false });
    }

    /// Prints every complete new line; a task that ended also gets its last partial line.
    /// `all`: the run is over, read every task to its end.
    pub fn print_new(&mut self, all: bool) {
        let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
        for f in self.followed.iter_mut().filter(|f| !f.done) {
            let ended = all || f.task.state().is_finished();
            loop {
                let (o, e) = {
                    let output = f.task.output();
                    (read(&output.stdout, &mut f.stdout), read(&output.stderr, &mut f.stderr))
                };
                let nothing_new = o.0.is_empty() && e.0.is_empty();
                let prefix = |stderr: bool| label(&f.alias, stderr, self.colour);
                emit(&mut out, &prefix(false), &mut f.stdout, o.0, o.1, ended);
                emit(&mut err, &prefix(true), &mut f.stderr, e.0, e.1, ended);
                // A running task gets one page per tick; an ended one is read to its end.
                if !ended || nothing_new {
                    break;
                }
            }
            f.done = ended;
        }
        let _ = out.flush();
    }
}

/// The next page of `buf` from `cursor`: (bytes, bytes not kept before them).
fn read(buf: &HeadTail, cursor: &mut Cursor) -> (Vec<u8>, u64) {
    let page = buf.page(cursor.offset, PAGE);
    cursor.offset = page.next_offset;
    (page.data, page.dropped_bytes)
}

fn emit(w: &mut impl Write, prefix: &str, cursor: &mut Cursor, data: Vec<u8>, dropped: u64, ended: bool) {
    if dropped > 0 {
        let _ = writeln!(w, "{prefix}[… {dropped} bytes not kept (max_output_bytes) …]");
        cursor.partial.clear();
    }
    cursor.partial.extend_from_slice(&data);
    while let Some(end) = cursor.partial.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = cursor.partial.drain(..=end).collect();
        let _ = writeln!(w, "{prefix}{}", printable(&String::from_utf8_lossy(&line[..line.len() - 1])));
    }
    if ended && !cursor.partial.is_empty() {
        let _ = writeln!(w, "{prefix}{}", printable(&String::from_utf8_lossy(&cursor.partial)));
        cursor.partial.clear();
    }
}

fn label(alias: &str, stderr: bool, colour: bool) -> String {
    let text = format!("{alias}: ");
    match (colour, stderr) {
        (false, _) => text,
        (true, false) => style(text).cyan().force_styling(true).to_string(),
        (true, true) => style(text).red().force_styling(true).to_string(),
    }
}

/// One host's block when it finished, as `pssh -i` prints it.
pub fn host_block(n: usize, total: usize, e: &HostEntry) -> String {
    let now = time::OffsetDateTime::now_utc();
    let clock = format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second());
    let verdict = match (&e.status, e.task.as_ref().map(|t| t.state())) {
        (HostStatus::Ok, _) => "[SUCCESS]".to_owned(),
        (_, Some(TaskState::Completed { exit_code: Some(c), .. })) => format!("[FAILURE] exited with code {c}"),
        (status, _) => format!(
            "[{}] {}",
            serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_uppercase)).unwrap_or_default(),
            e.reason.as_deref().unwrap_or("")
        ),
    };
    let mut block = format!("[{n}/{total}] {clock} {verdict} {}\n", e.alias);
    if let Some(task) = &e.task {
        let output = task.output();
        let (stdout, _) = inline_text(&output.stdout, usize::MAX);
        let (stderr, _) = inline_text(&output.stderr, usize::MAX);
        let (stdout, stderr) = (printable(&stdout), printable(&stderr));
        block.push_str(&stdout);
        if !stdout.is_empty() && !stdout.ends_with('\n') {
            block.push('\n');
        }
        if !stderr.is_empty() {
            block.push_str("Stderr: ");
            block.push_str(&stderr);
            if !stderr.ends_with('\n') {
                block.push('\n');
            }
        }
    }
    block
}
