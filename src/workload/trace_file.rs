//! Opening a trace a user names, without trusting it, and reading it as a
//! stream: the records go by one at a time and only what the simulation
//! needs of each is kept, so a trace of millions of tasks never sits in
//! memory as text.
//!
//! As with every input ([`crate::api::source`]), only regular files are
//! opened (a FIFO would block, `/dev/zero` never ends), and no line may be
//! longer than [`MAX_LINE_BYTES`] (a file with no newlines would otherwise
//! grow one record without bound).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// The longest line a trace may have: its records are a few hundred bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The most records one trace file may give: ten times the 10⁶ tasks a
/// planner's trace is expected to hold, at 72 bytes kept per task.
pub const MAX_RECORDS: u64 = 10_000_000;

/// A reader that fails once a line runs past [`MAX_LINE_BYTES`].
pub struct LineBounded<R> {
    inner: R,
    since_newline: usize,
}

impl<R: Read> Read for LineBounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.since_newline = 0;
            } else {
                self.since_newline += 1;
                if self.since_newline > MAX_LINE_BYTES {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a line is longer than {MAX_LINE_BYTES} bytes: not a trace's CSV"),
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// A CSV reader over the regular file at `path`, with a header row.
pub fn open_csv(path: &Path) -> Result<csv::Reader<LineBounded<BufReader<File>>>, String> {
    let file = open_regular(path)?;
    let bounded = LineBounded {
        inner: BufReader::with_capacity(1 << 16, file),
        since_newline: 0,
    };
    Ok(reader(true).from_reader(bounded))
}

/// A reader of headerless CSV at `path`, gunzipped when it ends in `.gz`
/// (as Google's Borg trace is published).
pub fn open_csv_maybe_gz(path: &Path) -> Result<csv::Reader<LineBounded<Box<dyn Read>>>, String> {
    let file = BufReader::with_capacity(1 << 16, open_regular(path)?);
    let inner: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let bounded = LineBounded {
        inner,
        since_newline: 0,
    };
    Ok(reader(false).from_reader(bounded))
}

/// Traces quote nothing; reading quotes literally keeps a record to its
/// line, so [`LineBounded`] bounds a record too (a quoted field may span
/// lines).
fn reader(headers: bool) -> csv::ReaderBuilder {
    let mut b = csv::ReaderBuilder::new();
    b.has_headers(headers).flexible(true).quoting(false);
    b
}

fn open_regular(path: &Path) -> Result<File, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file: kubesim reads only regular files".into());
    }
    File::open(path).map_err(|e| format!("cannot read it: {e}"))
}

/// The index of each of `wanted` in the header row; an error names the
/// missing columns and the ones the file has.
pub fn columns<const N: usize>(
    headers: &csv::StringRecord,
    wanted: [&str; N],
) -> Result<[usize; N], String> {
    let mut out = [0; N];
    let mut missing = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        match headers.iter().position(|h| h.trim() == *w) {
            Some(p) => out[i] = p,
            None => missing.push(*w),
        }
    }
    if missing.is_empty() {
        return Ok(out);
    }
    let has: Vec<&str> = headers.iter().collect();
    Err(format!(
        "the header lacks column{} {} (it names {})",
        if missing.len() > 1 { "s" } else { "" },
        missing.join(", "),
        has.join(", ")
    ))
}

/// Where a record sits, for errors: its line (1-based) and the column's
/// 1-based character position is not tracked by the CSV reader, so the
/// column is named instead.
pub fn line_of(record: &csv::StringRecord) -> u32 {
    record.position().map_or(0, |p| p.line() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_newlines_is_refused_in_bounded_memory() {
        let dir = std::env::temp_dir().join(format!("kubesim-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("long.csv");
        std::fs::write(&p, vec![b'a'; MAX_LINE_BYTES + 10]).unwrap();
        let mut r = open_csv(&p).unwrap();
        let err = r.headers().unwrap_err().to_string();
        assert!(err.contains("longer than"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_columns_are_named() {
        let h = csv::StringRecord::from(vec!["name", "cpu_milli"]);
        let e = columns(&h, ["name", "memory_mib", "num_gpu"]).unwrap_err();
        assert!(e.contains("columns memory_mib, num_gpu"), "{e}");
        assert_eq!(columns(&h, ["cpu_milli"]).unwrap(), [1]);
    }

    #[test]
    fn a_directory_is_not_opened() {
        let e = open_csv(Path::new("/")).err().unwrap();
        assert!(e.contains("regular file"), "{e}");
    }
}
