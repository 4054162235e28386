//! The trace recorder: JSON lines plus a running BLAKE3 digest of every byte.
//!
//! Each record is one object on one line with at least `t` (virtual
//! nanoseconds), `seq` (record number), `component` and `event`. The digest
//! covers exactly the bytes of the trace at the chosen level, so two runs with
//! the same scenario, seed and level print the same digest iff their traces
//! are byte-identical.

use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

use super::time::SimTime;

/// How much a run records. Every level includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceLevel {
    /// Timeline actions, faults, elections, and the end of the run.
    Faults = 0,
    /// Plus every committed write (verb, kind, name, resourceVersion), pod
    /// lifecycle steps and component events, without object bodies.
    Events = 1,
    /// Plus component spans: every apiserver request (client, verb, object,
    /// code, start, time in etcd), every etcd commit on the member that took
    /// the proposal, and the start of every scheduling cycle. What the
    /// Perfetto export and the apiserver and etcd charts are drawn from.
    Spans = 2,
    /// Plus the full object as stored after every committed write, in the
    /// Kubernetes JSON shape, so the cluster can be rebuilt at any instant.
    Full = 3,
}

impl std::str::FromStr for TraceLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "faults" => Ok(TraceLevel::Faults),
            "events" => Ok(TraceLevel::Events),
            "spans" => Ok(TraceLevel::Spans),
            "full" => Ok(TraceLevel::Full),
            other => Err(format!(
                "unknown trace level `{other}` (expected full, spans, events or faults)"
            )),
        }
    }
}

/// Where trace lines go besides the digest.
pub enum TraceSink {
    /// Only the digest is kept.
    Discard,
    /// Kept in memory (tests, golden traces).
    Memory(Vec<u8>),
    /// Streamed to a file.
    Writer(Box<dyn Write>),
}

/// Sees every recorded line as it is written (`kubesim run --narrate`).
/// It only reads: nothing it does can reach back into the run.
pub type TraceObserver = Box<dyn FnMut(&str)>;

/// Records trace lines and digests them.
pub struct Trace {
    level: TraceLevel,
    seq: u64,
    hasher: blake3::Hasher,
    sink: TraceSink,
    line: String,
    io_error: Option<std::io::Error>,
    observer: Option<TraceObserver>,
}

impl Trace {
    pub fn new(level: TraceLevel, sink: TraceSink) -> Self {
        Trace {
            level,
            seq: 0,
            hasher: blake3::Hasher::new(),
            sink,
            line: String::with_capacity(512),
            io_error: None,
            observer: None,
        }
    }

    /// Hands every line from now on, newline included, to `observer`.
    pub fn observe(&mut self, observer: TraceObserver) {
        self.observer = Some(observer);
    }

    pub fn level(&self) -> TraceLevel {
        self.level
    }

    /// True when records at `level` are kept; check before building costly fields.
    #[inline]
    pub fn enabled(&self, level: TraceLevel) -> bool {
        level <= self.level
    }

    /// Number of records written so far.
    pub fn records(&self) -> u64 {
        self.seq
    }

    /// Writes one record if `level` is enabled. `fields` appends extra
    /// key/value pairs through a [`Record`].
    #[inline]
    pub fn record(
        &mut self,
        level: TraceLevel,
        t: SimTime,
        component: &str,
        event: &str,
        fields: impl FnOnce(&mut Record<'_>),
    ) {
        if level > self.level {
            return;
        }
        self.line.clear();
        let _ = write!(
            self.line,
            "{{\"t\":{},\"seq\":{},\"component\":",
            t.0, self.seq
        );
        push_json_str(&mut self.line, component);
        self.line.push_str(",\"event\":");
        push_json_str(&mut self.line, event);
        fields(&mut Record {
            line: &mut self.line,
        });
        self.line.push_str("}\n");
        self.seq += 1;
        self.hasher.update(self.line.as_bytes());
        if let Some(o) = &mut self.observer {
            o(&self.line);
        }
        match &mut self.sink {
            TraceSink::Discard => {}
            TraceSink::Memory(v) => v.extend_from_slice(self.line.as_bytes()),
            TraceSink::Writer(w) => {
                if self.io_error.is_none() {
                    if let Err(e) = w.write_all(self.line.as_bytes()) {
                        self.io_error = Some(e);
                    }
                }
            }
        }
    }

    /// Hex digest of everything recorded so far.
    pub fn digest(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }

    /// Flushes the sink; reports the first write error of the run, if any.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if let Some(e) = self.io_error.take() {
            return Err(e);
        }
        if let TraceSink::Writer(w) = &mut self.sink {
            w.flush()?;
        }
        Ok(())
    }

    /// The recorded bytes when the sink is in memory.
    pub fn memory(&self) -> Option<&[u8]> {
        match &self.sink {
            TraceSink::Memory(v) => Some(v),
            _ => None,
        }
    }
}

/// Appends fields to a trace record under construction.
pub struct Record<'a> {
    line: &'a mut String,
}

impl Record<'_> {
    fn key(&mut self, k: &str) {
        self.line.push(',');
        push_json_str(self.line, k);
        self.line.push(':');
    }
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        push_json_str(self.line, v);
        self
    }
    pub fn u64(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        let _ = write!(self.line, "{v}");
        self
    }
    pub fn i64(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        let _ = write!(self.line, "{v}");
        self
    }
    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.line.push_str(if v { "true" } else { "false" });
        self
    }
    /// Any serialisable value, written as compact JSON.
    pub fn json<T: Serialize + ?Sized>(&mut self, k: &str, v: &T) -> &mut Self {
        self.key(k);
        // Serialising plain data into a String cannot fail.
        let s = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
        self.line.push_str(&s);
        self
    }
}

/// Appends `s` as a JSON string literal. Runs of characters that need no
/// escaping are copied whole: the escapes are all ASCII, so scanning bytes
/// never splits a UTF-8 sequence. (An eight-bytes-at-a-time scan measured
/// slower on the trace's mostly short strings.)
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_json_lines_and_digest_follows_bytes() {
        let mut a = Trace::new(TraceLevel::Events, TraceSink::Memory(Vec::new()));
        a.record(
            TraceLevel::Events,
            SimTime(5),
            "kubelet/n1",
            "PodStarted",
            |r| {
                r.str("pod", "default/web \"0\"").u64("n", 3);
            },
        );
        a.record(TraceLevel::Full, SimTime(6), "x", "ignored", |_| {});
        let text = String::from_utf8(a.memory().unwrap().to_vec()).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["t"], 5);
        assert_eq!(v["pod"], "default/web \"0\"");
        let mut b = Trace::new(TraceLevel::Events, TraceSink::Discard);
        b.record(
            TraceLevel::Events,
            SimTime(5),
            "kubelet/n1",
            "PodStarted",
            |r| {
                r.str("pod", "default/web \"0\"").u64("n", 3);
            },
        );
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn strings_are_escaped_as_json() {
        let mut out = String::new();
        push_json_str(&mut out, "a\"b\\c\nd\te\r\u{1}é✓");
        assert_eq!(out, r#""a\"b\\c\nd\te\r\u0001é✓""#);
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\te\r\u{1}é✓");
        // Every position of every escape in a 20-byte string
        // agrees with serde's own encoder.
        for special in ['"', '\\', '\n', '\u{1f}', '\u{0}', 'é', ' ', '~', '\u{7f}'] {
            for at in 0..20 {
                let text: String = (0..20)
                    .map(|i| if i == at { special } else { 'x' })
                    .collect();
                let mut ours = String::new();
                push_json_str(&mut ours, &text);
                assert_eq!(ours, serde_json::to_string(&text).unwrap(), "{text:?}");
            }
        }
    }
}
