//! The span records of a trace (level `spans` and above), read with typed
//! parsers because a long run holds hundreds of thousands of them: the
//! apiserver's `Request`s and etcd's `Commit`s. Shared by the series reader
//! (request rate and latency, commit latency over time) and the Perfetto
//! export.

use std::borrow::Cow;

use serde::Deserialize;

use super::series::Step;

/// One apiserver request, answered at `t`.
#[derive(Deserialize, Debug)]
pub struct RequestSpan<'a> {
    pub t: u64,
    #[serde(borrow)]
    pub client: Cow<'a, str>,
    #[serde(borrow)]
    pub verb: Cow<'a, str>,
    #[serde(borrow)]
    pub object: Cow<'a, str>,
    pub code: u16,
    pub start: u64,
    /// Nanoseconds of the request spent waiting on etcd.
    pub etcd: u64,
}

impl RequestSpan<'_> {
    /// GET, LIST (and WATCH): what counts against `--max-requests-inflight`.
    pub fn is_read(&self) -> bool {
        matches!(&*self.verb, "GET" | "LIST" | "WATCH")
    }
}

/// One etcd proposal, committed and applied at `t` on the member that took it.
#[derive(Deserialize, Debug)]
pub struct CommitSpan<'a> {
    pub t: u64,
    #[serde(borrow)]
    pub component: Cow<'a, str>,
    pub index: u64,
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    pub start: u64,
}

/// A trace line's event name, read from the record's fixed prefix
/// (`{"t":…,"seq":…,"component":"…","event":"NAME"`) without parsing it.
pub fn event_name(line: &str) -> Option<&str> {
    const KEY: &str = "\"event\":\"";
    // `t` and `seq` are integers and component names hold no comma, so the
    // key follows the third comma; anything else falls back to a search.
    let bytes = line.as_bytes();
    let mut third = None;
    let mut seen = 0;
    for (i, &b) in bytes.iter().enumerate().take(256) {
        if b == b',' {
            seen += 1;
            if seen == 3 {
                third = Some(i + 1);
                break;
            }
        }
    }
    let at = match third {
        Some(i) if line[i..].starts_with(KEY) => i + KEY.len(),
        _ => line.find(KEY)? + KEY.len(),
    };
    let rest = &line[at..];
    Some(&rest[..rest.find('"')?])
}

/// Lease and Event writes: most of a long trace, and read by no report.
/// The key follows the verb at the start of a `Write` record.
pub fn is_unread_write(line: &str, event: &str) -> bool {
    if event != "Write" {
        return false;
    }
    let head = line.get(..200).unwrap_or(line);
    head.contains("\"key\":\"Lease/") || head.contains("\"key\":\"Event/")
}

/// A span record, parsed once for every reader.
pub enum Span<'a> {
    Request(RequestSpan<'a>),
    Commit(CommitSpan<'a>),
}

/// Parses `line` as a span record if its event (from [`event_name`]) is one.
/// Records as kubesim writes them (fields in order, no escapes) take a
/// positional fast path, several times quicker than a JSON parser on the
/// million spans of a long run; anything else goes through serde.
pub fn parse_span<'a>(line: &'a str, event: &str) -> Option<Result<Span<'a>, String>> {
    let bad = |e: serde_json::Error| format!("not a span record: {e}");
    match event {
        "Request" => Some(match fast_request(line) {
            Some(r) => Ok(Span::Request(r)),
            None => serde_json::from_str(line).map(Span::Request).map_err(bad),
        }),
        "Commit" => Some(match fast_commit(line) {
            Some(c) => Ok(Span::Commit(c)),
            None => serde_json::from_str(line).map(Span::Commit).map_err(bad),
        }),
        _ => None,
    }
}

/// Reads a record written in kubesim's own field order.
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn lit(&mut self, l: &str) -> Option<()> {
        self.s[self.at..].starts_with(l).then(|| self.at += l.len())
    }
    fn u64(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        let start = self.at;
        for &b in &self.s.as_bytes()[start..] {
            if !b.is_ascii_digit() {
                break;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            self.at += 1;
        }
        (self.at > start).then_some(v)
    }
    /// A string without escapes (a backslash sends the record to serde).
    fn str(&mut self) -> Option<Cow<'a, str>> {
        self.lit("\"")?;
        let rest = &self.s[self.at..];
        let end = rest.bytes().position(|b| b == b'"' || b == b'\\')?;
        if rest.as_bytes()[end] != b'"' {
            return None;
        }
        self.at += end + 1;
        Some(Cow::Borrowed(&rest[..end]))
    }
}

/// The record's common prefix up to its event name: (cursor after
/// `"event":"NAME",`, t, component).
fn head<'a>(line: &'a str, event: &str) -> Option<(Cursor<'a>, u64, Cow<'a, str>)> {
    let mut c = Cursor { s: line, at: 0 };
    c.lit("{\"t\":")?;
    let t = c.u64()?;
    c.lit(",\"seq\":")?;
    c.u64()?;
    c.lit(",\"component\":")?;
    let component = c.str()?;
    c.lit(",\"event\":\"")?;
    c.lit(event)?;
    c.lit("\",")?;
    Some((c, t, component))
}

fn fast_request(line: &str) -> Option<RequestSpan<'_>> {
    let (mut c, t, _) = head(line, "Request")?;
    c.lit("\"client\":")?;
    let client = c.str()?;
    c.lit(",\"verb\":")?;
    let verb = c.str()?;
    c.lit(",\"object\":")?;
    let object = c.str()?;
    c.lit(",\"code\":")?;
    let code = u16::try_from(c.u64()?).ok()?;
    c.lit(",\"start\":")?;
    let start = c.u64()?;
    c.lit(",\"etcd\":")?;
    let etcd = c.u64()?;
    c.lit("}")?;
    Some(RequestSpan {
        t,
        client,
        verb,
        object,
        code,
        start,
        etcd,
    })
}

fn fast_commit(line: &str) -> Option<CommitSpan<'_>> {
    let (mut c, t, component) = head(line, "Commit")?;
    c.lit("\"index\":")?;
    let index = c.u64()?;
    c.lit(",\"key\":")?;
    let key = c.str()?;
    c.lit(",\"start\":")?;
    let start = c.u64()?;
    c.lit("}")?;
    Some(CommitSpan {
        t,
        component,
        index,
        key,
        start,
    })
}

/// Bucket widths a chart of rates reads well in, seconds.
const WIDTHS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// The narrowest width that cuts `end` seconds into at most ~150 buckets.
pub fn bucket_width(end: f64) -> f64 {
    WIDTHS
        .iter()
        .copied()
        .find(|w| end / w <= 150.0)
        .unwrap_or(3600.0)
}

/// Samples (answered at, seconds; latency, seconds) turned into per-bucket
/// series: count per second, p50 and p99 (nearest rank). Buckets without
/// samples read 0 for the rate and carry no latency point.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bucketed {
    pub width: f64,
    pub per_second: Vec<Step>,
    pub p50: Vec<Step>,
    pub p99: Vec<Step>,
}

impl Bucketed {
    pub fn from_samples(samples: &[(f64, f32)], end: f64) -> Bucketed {
        if samples.is_empty() {
            return Bucketed::default();
        }
        let width = bucket_width(end);
        let buckets = (end / width).ceil().max(1.0) as usize;
        let mut by: Vec<Vec<f32>> = vec![Vec::new(); buckets];
        for &(t, l) in samples {
            let b = ((t / width) as usize).min(buckets - 1);
            by[b].push(l);
        }
        let mut out = Bucketed {
            width,
            ..Bucketed::default()
        };
        for (i, mut ls) in by.into_iter().enumerate() {
            let t = i as f64 * width;
            out.per_second.push((t, ls.len() as f64 / width));
            if ls.is_empty() {
                continue;
            }
            ls.sort_unstable_by(f32::total_cmp);
            let rank = |q: f64| {
                let r = ((q * ls.len() as f64).ceil() as usize).clamp(1, ls.len());
                ls[r - 1] as f64
            };
            out.p50.push((t, rank(0.5)));
            out.p99.push((t, rank(0.99)));
        }
        // Close the last step at the run's end.
        let last = out.per_second[out.per_second.len() - 1].1;
        out.per_second.push((end, last));
        out
    }

    pub fn is_empty(&self) -> bool {
        self.p50.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_spans_parse_and_classify() {
        let line = r#"{"t":83526,"seq":5,"component":"kube-apiserver","event":"Request","client":"kube-scheduler","verb":"LIST","object":"Node","code":200,"start":55292,"etcd":0}"#;
        assert_eq!(event_name(line), Some("Request"));
        let Some(Ok(Span::Request(r))) = parse_span(line, "Request") else {
            panic!("a request span")
        };
        assert!(r.is_read());
        assert_eq!((r.start, r.t, r.code), (55292, 83526, 200));
        let c = r#"{"t":9,"seq":6,"component":"etcd-0","event":"Commit","index":2,"key":"Node/w\"2","start":3}"#;
        let Some(Ok(Span::Commit(c))) = parse_span(c, "Commit") else {
            panic!("a commit span")
        };
        assert_eq!(c.key, "Node/w\"2");
        assert!(parse_span("{}", "Write").is_none());
        // The fast path and serde agree; reordered or escaped records still parse.
        let fast = fast_request(line).unwrap();
        assert_eq!(
            (fast.t, fast.start, fast.etcd, &*fast.client),
            (83526, 55292, 0, "kube-scheduler")
        );
        let reordered = r#"{"seq":5,"t":7,"component":"kube-apiserver","event":"Request","verb":"GET","client":"a\"b","object":"Pod/x","code":404,"start":1,"etcd":0}"#;
        assert!(fast_request(reordered).is_none());
        let Some(Ok(Span::Request(r))) = parse_span(reordered, "Request") else {
            panic!("serde reads what the fast path does not")
        };
        assert_eq!((r.t, &*r.client, r.code), (7, "a\"b", 404));
        let commit = r#"{"t":9,"seq":6,"component":"etcd-0","event":"Commit","index":2,"key":"Node/w2","start":3}"#;
        let fc = fast_commit(commit).unwrap();
        assert_eq!((fc.t, fc.index, &*fc.key, fc.start), (9, 2, "Node/w2", 3));
        assert!(matches!(parse_span("{", "Commit"), Some(Err(_))));
        let lease = r#"{"t":1,"seq":2,"component":"kube-apiserver","event":"Write","verb":"update","key":"Lease/kube-node-lease/n1","rv":3}"#;
        assert_eq!(event_name(lease), Some("Write"));
        assert!(is_unread_write(lease, "Write"));
        assert!(!is_unread_write(&lease.replace("Lease/", "Pod/"), "Write"));
    }

    #[test]
    fn buckets_give_rates_and_percentiles() {
        assert_eq!(bucket_width(60.0), 1.0);
        assert_eq!(bucket_width(600.0), 5.0);
        assert_eq!(bucket_width(3600.0), 30.0);
        let samples: Vec<(f64, f32)> = (0..100)
            .map(|i| (0.5, (i + 1) as f32 / 1000.0))
            .chain([(2.5, 0.5)])
            .collect();
        let b = Bucketed::from_samples(&samples, 3.0);
        assert_eq!(b.width, 1.0);
        assert_eq!(
            b.per_second,
            vec![(0.0, 100.0), (1.0, 0.0), (2.0, 1.0), (3.0, 1.0)]
        );
        assert_eq!(b.p50, vec![(0.0, 0.05f32 as f64), (2.0, 0.5)]);
        assert_eq!(b.p99[0], (0.0, 0.099f32 as f64));
        assert!(Bucketed::from_samples(&[], 10.0).is_empty());
    }
}
