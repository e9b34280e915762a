//! Masking of configured secret values (passwords, key passphrases, become passwords) in a
//! command's output *as it streams*, before any byte reaches the task's buffers.
//!
//! Owns: `StreamMasker` (one stream's state) and `MaskingSink` (stdout and stderr of one
//! task). A secret split across two reads is still masked: the end of each chunk that could
//! be the start of a secret (at most the longest secret − 1 bytes) is held back until the
//! next chunk or the end of the stream. Everything downstream (inline results, pages,
//! progress, runbook reports, fan-out folds) reads the buffers, so masking here covers them
//! all. Never stores a value past the task and never logs one.

use std::sync::Mutex;

use crate::ssh::Sink;
use crate::tasks::ring::Stream;

/// What replaces a secret value in output.
pub const MASK: &[u8] = b"[secret]";

/// One stream's masking state.
#[derive(Debug, Default)]
pub struct StreamMasker {
    secrets: Vec<Vec<u8>>,
    /// Finds them all in one pass (leftmost-longest: of two secrets matching at one place,
    /// the longer is masked whole); `None` when there are none.
    finder: Option<aho_corasick::AhoCorasick>,
    longest: usize,
    /// Bytes of the previous chunk that may begin a secret.
    held: Vec<u8>,
}

impl StreamMasker {
    pub fn new(secrets: &[String]) -> Self {
        let secrets: Vec<Vec<u8>> = secrets.iter().filter(|s| !s.is_empty()).map(|s| s.as_bytes().to_vec()).collect();
        let finder = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&secrets)
            .ok()
            .filter(|_| !secrets.is_empty());
        let longest = secrets.iter().map(Vec::len).max().unwrap_or(0);
        Self { secrets, finder, longest, held: Vec::new() }
    }

    /// Feeds a chunk; returns what is safe to pass on now (secrets masked).
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        if self.finder.is_none() {
            return data.to_vec();
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(data);
        let (out, rest) = self.scan(&buf, false);
        self.held = buf[rest..].to_vec();
        out
    }

    /// The end of the stream: what was held back, masked.
    pub fn finish(&mut self) -> Vec<u8> {
        let buf = std::mem::take(&mut self.held);
        self.scan(&buf, true).0
    }

    /// Masks `buf` left to right; unless `last`, stops at the first position whose rest
    /// could still become a secret (a proper prefix of one; only the last `longest - 1`
    /// bytes can be) and returns that position.
    fn scan(&self, buf: &[u8], last: bool) -> (Vec<u8>, usize) {
        let Some(finder) = &self.finder else { return (buf.to_vec(), buf.len()) };
        let hold_from = |from: usize| -> usize {
            if last {
                return buf.len();
            }
            let start = from.max(buf.len().saturating_sub(self.longest.saturating_sub(1)));
            let is_prefix = |rest: &[u8]| self.secrets.iter().any(|s| s.len() > rest.len() && s.starts_with(rest));
            (start..buf.len()).find(|&i| is_prefix(&buf[i..])).unwrap_or(buf.len())
        };
        let mut out = Vec::with_capacity(buf.len());
        let mut cursor = 0;
        for m in finder.find_iter(buf) {
            // A hold point before this match comes first, so a short secret matching there
            // cannot cut a longer one the next chunk would complete.
            let hold = hold_from(cursor);
            if hold <= m.start() {
                out.extend_from_slice(&buf[cursor..hold]);
                return (out, hold);
            }
            out.extend_from_slice(&buf[cursor..m.start()]);
            out.extend_from_slice(MASK);
            cursor = m.end();
        }
        let hold = hold_from(cursor);
        out.extend_from_slice(&buf[cursor..hold]);
        (out, hold)
    }
}

/// `text` with every one of `secrets` masked (a task's error message, which can quote the
/// command or sudo's words about it).
pub fn mask_str(text: &str, secrets: &[String]) -> String {
    let mut m = StreamMasker::new(secrets);
    let mut out = m.push(text.as_bytes());
    out.extend(m.finish());
    String::from_utf8_lossy(&out).into_owned()
}

/// A task's output sink that masks secrets in stdout and stderr before `inner` sees them.
pub struct MaskingSink<'a> {
    inner: &'a dyn Sink,
    streams: Mutex<(StreamMasker, StreamMasker)>,
}

impl<'a> MaskingSink<'a> {
    pub fn new(inner: &'a dyn Sink, secrets: &[String]) -> Self {
        Self { inner, streams: Mutex::new((StreamMasker::new(secrets), StreamMasker::new(secrets))) }
    }

    /// Passes on what each stream held back; call once the command ended.
    pub fn finish(&self) {
        let (out, err) = {
            let mut s = self.streams.lock().unwrap_or_else(|p| p.into_inner());
            (s.0.finish(), s.1.finish())
        };
        if !out.is_empty() {
            self.inner.write(Stream::Stdout, &out);
        }
        if !err.is_empty() {
            self.inner.write(Stream::Stderr, &err);
        }
    }
}

impl Sink for MaskingSink<'_> {
    fn write(&self, stream: Stream, data: &[u8]) {
        let masked = {
            let mut s = self.streams.lock().unwrap_or_else(|p| p.into_inner());
            match stream {
                Stream::Stderr => s.1.push(data),
                _ => s.0.push(data),
            }
        };
        if !masked.is_empty() {
            self.inner.write(stream, &masked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(secrets: &[&str], chunks: &[&[u8]]) -> String {
        let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
        let mut m = StreamMasker::new(&secrets);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(m.push(c));
        }
        out.extend(m.finish());
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn a_secret_split_at_every_offset_is_masked() {
        let text = b"before hunter2-secret after hunter2-secret";
        for cut in 0..=text.len() {
            let got = run(&["hunter2-secret"], &[&text[..cut], &text[cut..]]);
            assert_eq!(got, "before [secret] after [secret]", "cut at {cut}");
        }
        // Three pieces: every pair of cut points.
        for a in 0..=text.len() {
            for b in a..=text.len() {
                let got = run(&["hunter2-secret"], &[&text[..a], &text[a..b], &text[b..]]);
                assert_eq!(got, "before [secret] after [secret]", "cuts at {a}, {b}");
            }
        }
    }

    #[test]
    fn byte_by_byte_and_overlapping_secrets() {
        let text = b"xabcdx abx";
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(run(&["ab", "abcd"], &chunks), "x[secret]x [secret]x");
        assert_eq!(run(&["ab", "abcd"], &[text]), "x[secret]x [secret]x");
    }

    #[test]
    fn held_prefix_that_is_not_a_secret_is_released() {
        assert_eq!(run(&["secret-value"], &[b"a secr", b"et-valu"]), "a secret-valu");
        assert_eq!(run(&["pw"], &[b"p", b"x"]), "px");
        assert_eq!(run(&[], &[b"nothing", b" to mask"]), "nothing to mask");
    }

    #[test]
    fn holds_at_most_the_longest_secret_minus_one() {
        let mut m = StreamMasker::new(&["abcdef".to_owned()]);
        let out = m.push(b"xxxxabcde");
        assert_eq!(out, b"xxxx");
        assert_eq!(m.held.len(), 5);
    }
}
