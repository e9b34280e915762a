//! Head+tail byte buffer: keeps the first and last bytes of a stream, counts the middle.
//!
//! Owns: bounded retention and byte-offset paging over a stream of any length. A 10 GiB
//! stream costs `head_cap + tail_cap` bytes. Pure: no IO, no async, no clock.

use std::collections::VecDeque;

/// Which stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    Combined,
}

/// The first `head_cap` and last `tail_cap` bytes of a stream.
#[derive(Debug, Default)]
pub struct HeadTail {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

/// One page of retained output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub data: Vec<u8>,
    /// Offset of the first byte of `data` in the whole stream.
    pub offset: u64,
    /// Where the next page starts.
    pub next_offset: u64,
    /// Bytes between the requested offset and `offset` that were not retained.
    pub dropped_bytes: u64,
}

impl HeadTail {
    pub fn new(head_cap: usize, tail_cap: usize) -> Self {
        Self { head: Vec::new(), tail: VecDeque::new(), head_cap, tail_cap, total: 0 }
    }

    /// Appends `data`; returns the change in retained bytes (for the global budget).
    pub fn push(&mut self, mut data: &[u8]) -> i64 {
        let before = self.retained();
        self.total += data.len() as u64;
        let room = self.head_cap.saturating_sub(self.head.len());
        if room > 0 {
            let n = room.min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if data.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.tail_cap..]);
        } else {
            let excess = (self.tail.len() + data.len()).saturating_sub(self.tail_cap);
            self.tail.drain(..excess);
            self.tail.extend(data);
        }
        self.retained() as i64 - before as i64
    }

    /// Bytes held in memory.
    pub fn retained(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Bytes ever written.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes written but not retained.
    pub fn dropped(&self) -> u64 {
        self.total - self.retained() as u64
    }

    /// Frees the memory, keeping the counters; returns the bytes freed.
    pub fn release(&mut self) -> usize {
        let n = self.retained();
        self.head = Vec::new();
        self.tail = VecDeque::new();
        self.total = self.total.max(n as u64);
        n
    }

    fn tail_start(&self) -> u64 {
        self.total - self.tail.len() as u64
    }

    /// Up to `limit` retained bytes from `from`; a request inside the dropped middle skips
    /// to the tail and says how much it skipped.
    pub fn page(&self, from: u64, limit: usize) -> Page {
        let from = from.min(self.total);
        let head_len = self.head.len() as u64;
        if from < head_len {
            let end = (from as usize + limit).min(self.head.len());
            let mut data = self.head[from as usize..end].to_vec();
            // Continue into the tail only when nothing was dropped between them.
            if end == self.head.len() && self.tail_start() == head_len {
                data.extend(self.tail.iter().take(limit - data.len()));
            }
            let next = from + data.len() as u64;
            return Page { data, offset: from, next_offset: next, dropped_bytes: 0 };
        }
        let start = from.max(self.tail_start());
        let skip = (start - self.tail_start()) as usize;
        let data: Vec<u8> = self.tail.iter().skip(skip).take(limit).copied().collect();
        Page { next_offset: start + data.len() as u64, offset: start, dropped_bytes: start - from, data }
    }

    /// The last `n` lines among the retained bytes (the tail, or head+tail when contiguous).
    pub fn tail_lines(&self, n: usize) -> Vec<u8> {
        let contiguous = self.tail_start() == self.head.len() as u64;
        let bytes: Vec<u8> = if contiguous {
            self.head.iter().chain(self.tail.iter()).copied().collect()
        } else {
            self.tail.iter().copied().collect()
        };
        let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let start = body
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, b)| **b == b'\n')
            .nth(n.saturating_sub(1))
            .map_or(0, |(i, _)| i + 1);
        if n == 0 { Vec::new() } else { bytes[start..].to_vec() }
    }
}

/// The first and last `budget/2` retained bytes of a stream, marked where bytes are left out.
pub fn inline_text(buf: &HeadTail, budget: usize) -> (String, bool) {
    let total = buf.total();
    if total as usize <= budget && buf.dropped() == 0 {
        return (String::from_utf8_lossy(&buf.page(0, budget).data).into_owned(), false);
    }
    let half = budget / 2;
    let head = buf.page(0, half);
    let tail = buf.page(total.saturating_sub(half as u64).max(head.next_offset), half);
    // Cut on character boundaries: drop a partial character at the end of the head and
    // continuation bytes at the start of the tail (they are counted as not shown).
    let head_len = match decode_utf8(&head.data) {
        Some((_, held_back)) => head.data.len() - held_back,
        None => head.data.len(),
    };
    let tail_skip = tail.data.iter().take(3).take_while(|b| (**b & 0xC0) == 0x80).count();
    let omitted = tail.offset + tail_skip as u64 - head.next_offset + (head.data.len() - head_len) as u64;
    let text = format!(
        "{}\n…[{omitted} bytes not shown; page them with ssh_get_task_output]…\n{}",
        String::from_utf8_lossy(&head.data[..head_len]),
        String::from_utf8_lossy(&tail.data[tail_skip..])
    );
    (text, true)
}

/// Decodes bytes for a JSON result without splitting a UTF-8 character: returns the text
/// and how many trailing bytes were held back (an incomplete character), or `None` when the
/// bytes are not text (invalid UTF-8 or NUL) and should be sent as base64.
pub fn decode_utf8(bytes: &[u8]) -> Option<(String, usize)> {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.contains('\0') => Some((s.to_owned(), 0)),
        Ok(_) => None,
        Err(e) if e.error_len().is_none() => {
            let valid = e.valid_up_to();
            let s = std::str::from_utf8(&bytes[..valid]).ok()?;
            (!s.contains('\0')).then(|| (s.to_owned(), bytes.len() - valid))
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail_and_counts_the_middle() {
        let mut b = HeadTail::new(4, 4);
        for chunk in [&b"abc"[..], b"defgh", b"ijklmnop"] {
            b.push(chunk);
        }
        assert_eq!((b.total(), b.retained(), b.dropped()), (16, 8, 8));
        assert_eq!(b.page(0, 100), Page { data: b"abcd".to_vec(), offset: 0, next_offset: 4, dropped_bytes: 0 });
        assert_eq!(b.page(4, 100), Page { data: b"mnop".to_vec(), offset: 12, next_offset: 16, dropped_bytes: 8 });
        assert_eq!(b.page(14, 1), Page { data: b"o".to_vec(), offset: 14, next_offset: 15, dropped_bytes: 0 });
        assert_eq!(b.page(99, 10).data, b"");
    }

    #[test]
    fn small_streams_page_contiguously() {
        let mut b = HeadTail::new(4, 8);
        b.push(b"line1\nline2\nline3\n");
        assert_eq!(b.dropped(), 6);
        let mut c = HeadTail::new(8, 8);
        c.push(b"a\nb\nc\n");
        assert_eq!(c.page(0, 100).data, b"a\nb\nc\n");
        assert_eq!(c.tail_lines(2), b"b\nc\n");
        assert_eq!(c.tail_lines(10), b"a\nb\nc\n");
        assert_eq!(b.tail_lines(1), b"line3\n");
    }

    #[test]
    fn huge_pushes_stay_bounded() {
        let mut b = HeadTail::new(1024, 1024);
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..64 {
            b.push(&chunk);
        }
        assert_eq!((b.retained(), b.total()), (2048, 64 << 20));
        assert_eq!(b.release(), 2048);
        assert_eq!((b.retained(), b.total()), (0, 64 << 20));
    }

    #[test]
    fn utf8_is_never_split() {
        let euro = "€".as_bytes();
        assert_eq!(decode_utf8(&euro[..2]), Some((String::new(), 2)));
        assert_eq!(decode_utf8(b"ok\xe2\x82"), Some(("ok".into(), 2)));
        assert_eq!(decode_utf8(b"\xff\xfe"), None);
        assert_eq!(decode_utf8(b"a\0b"), None);
    }
}
