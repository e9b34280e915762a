//! Rolling runs: a runbook's `serial:` (as Ansible's `serial`) splits the hosts of a run into
//! batches; each batch goes through every step before the next batch starts.
//!
//! Owns: the checked batch sizes (`Serial`) and the split of an ordered host list into
//! batches. Never runs anything and never judges failures (`runner/exec.rs` stops between
//! batches on `max_fail_percentage`).

use serde::Serialize;

use super::raw::{RawBatch, RawSerial};

/// One batch size as written: a host count or a share of the run's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchSize {
    Hosts(usize),
    Percent(f64),
}

/// The batch sizes in order; the last one repeats until every host had its batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Serial(pub Vec<BatchSize>);

impl Serial {
    /// Checks `serial:` as written: counts > 0, percentages in (0, 100], a non-empty list.
    pub fn parse(raw: &RawSerial) -> Result<Self, String> {
        let items: Vec<&RawBatch> = match raw {
            RawSerial::One(b) => vec![b],
            RawSerial::Many(list) if list.is_empty() => {
                return Err("an empty list: give at least one batch size".into());
            }
            RawSerial::Many(list) => list.iter().collect(),
        };
        let sizes = items.into_iter().map(parse_one).collect::<Result<Vec<_>, _>>()?;
        Ok(Self(sizes))
    }

    pub fn is_rolling(&self) -> bool {
        !self.0.is_empty()
    }

    /// Splits `hosts` (in run order) into batches. A percentage is of all the run's hosts,
    /// rounded down, at least one host (Ansible's rule).
    pub fn batches(&self, hosts: &[String]) -> Vec<Vec<String>> {
        if !self.is_rolling() {
            return if hosts.is_empty() { Vec::new() } else { vec![hosts.to_vec()] };
        }
        let total = hosts.len();
        let mut out = Vec::new();
        let mut rest = hosts;
        let mut sizes = self.0.iter();
        let mut size = 1;
        while !rest.is_empty() {
            if let Some(next) = sizes.next() {
                size = match *next {
                    BatchSize::Hosts(n) => n,
                    BatchSize::Percent(p) => ((total as f64 * p / 100.0).floor() as usize).max(1),
                };
            }
            let (batch, tail) = rest.split_at(size.min(rest.len()));
            out.push(batch.to_vec());
            rest = tail;
        }
        out
    }
}

fn parse_one(raw: &RawBatch) -> Result<BatchSize, String> {
    match raw {
        RawBatch::Count(0) => Err("a batch of 0 hosts never ends: use 1 or more".into()),
        RawBatch::Count(n) => Ok(BatchSize::Hosts(usize::try_from(*n).unwrap_or(usize::MAX))),
        RawBatch::Text(t) => {
            let percent = t.trim().strip_suffix('%').and_then(|n| n.trim().parse::<f64>().ok());
            match percent {
                Some(p) if p > 0.0 && p <= 100.0 => Ok(BatchSize::Percent(p)),
                Some(_) => Err(format!("{t:?}: a percentage must be above 0% and at most 100%")),
                None => Err(format!("{t:?} is neither a host count nor a percentage like \"25%\"")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    fn sizes(serial: &Serial, n: usize) -> Vec<usize> {
        serial.batches(&hosts(n)).iter().map(Vec::len).collect()
    }

    #[test]
    fn batches_follow_ansible_serial() {
        let one = Serial::parse(&RawSerial::One(RawBatch::Count(1))).unwrap();
        assert_eq!(sizes(&one, 3), [1, 1, 1]);
        let quarter = Serial::parse(&RawSerial::One(RawBatch::Text("25%".into()))).unwrap();
        assert_eq!(sizes(&quarter, 10), [2, 2, 2, 2, 2]);
        assert_eq!(sizes(&quarter, 3), [1, 1, 1], "a share rounds down but is at least one host");
        let ramp =
            Serial::parse(&RawSerial::Many(vec![RawBatch::Count(1), RawBatch::Count(5), RawBatch::Text("25%".into())]))
                .unwrap();
        assert_eq!(sizes(&ramp, 20), [1, 5, 5, 5, 4], "the last size repeats");
        assert_eq!(sizes(&ramp, 3), [1, 2]);
        assert_eq!(sizes(&Serial::default(), 4), [4], "no serial: one batch");
        assert_eq!(ramp.batches(&hosts(3)), [vec!["h1".to_owned()], vec!["h2".to_owned(), "h3".to_owned()]]);
    }

    #[test]
    fn bad_sizes_are_refused_with_the_reason() {
        let bad = |raw: RawSerial| Serial::parse(&raw).unwrap_err();
        assert!(bad(RawSerial::One(RawBatch::Count(0))).contains("0 hosts"));
        assert!(bad(RawSerial::One(RawBatch::Text("150%".into()))).contains("at most 100%"));
        assert!(bad(RawSerial::One(RawBatch::Text("half".into()))).contains("\"half\""));
        assert!(bad(RawSerial::Many(Vec::new())).contains("empty list"));
    }
}
