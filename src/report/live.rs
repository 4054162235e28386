//! Building a run's report while the run writes its trace. The trace
//! observer hands every line to a [`Feeder`], which passes them a megabyte
//! at a time to a thread that feeds the chart series, the narration and the
//! Perfetto export; the simulation keeps one core and the report takes the
//! other, so after the run only the charts and the page remain to draw.
//!
//! The lines are exactly the trace file's, so the result is byte for byte
//! what `kubesim report DIR` rebuilds from the file later.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::output::{finish_outputs, Readers, Written};
use super::perfetto::PerfettoWriter;
use super::spans::{event_name, is_unread_write};

/// Bytes of trace lines handed over at once.
const CHUNK: usize = 1 << 20;
/// Chunks in flight before the run waits for the report to catch up.
const IN_FLIGHT: usize = 32;

type Sink = BufWriter<File>;

/// Takes trace lines on the run's thread. Dropping it (with the trace)
/// hands over the last lines and tells the report thread the run is over.
pub struct Feeder {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
}

impl Feeder {
    pub fn feed(&mut self, line: &str) {
        self.buf.extend_from_slice(line.as_bytes());
        if self.buf.len() >= CHUNK {
            self.hand_over();
        }
    }

    fn hand_over(&mut self) {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
        if let Some(tx) = &self.tx {
            // A report thread that failed has said why; the run goes on.
            if tx.send(chunk).is_err() {
                self.tx = None;
            }
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.hand_over();
        }
        self.tx = None;
    }
}

/// The report thread of one run.
pub struct LiveReport {
    worker: JoinHandle<Result<Readers<Sink>, String>>,
    perfetto_path: PathBuf,
}

/// Starts the report thread for a run writing into `dir`.
pub fn start(dir: &Path) -> Result<(Feeder, LiveReport), String> {
    let perfetto_path = dir.join("trace.perfetto.json");
    let file = File::create(&perfetto_path)
        .map_err(|e| format!("writing {}: {e}", perfetto_path.display()))?;
    let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
    let worker = std::thread::Builder::new()
        .name("report".into())
        .spawn(move || read_chunks(rx, BufWriter::with_capacity(CHUNK, file)))
        .map_err(|e| format!("starting the report thread: {e}"))?;
    Ok((
        Feeder {
            buf: Vec::with_capacity(CHUNK + 4096),
            tx: Some(tx),
        },
        LiveReport {
            worker,
            perfetto_path,
        },
    ))
}

fn read_chunks(rx: Receiver<Vec<u8>>, sink: Sink) -> Result<Readers<Sink>, String> {
    let mut readers = Readers::new(Some(PerfettoWriter::new(sink)));
    let mut n = 0u64;
    for chunk in rx {
        let text = std::str::from_utf8(&chunk).map_err(|e| format!("trace chunk: {e}"))?;
        for line in text.split_terminator('\n') {
            n += 1;
            let event = event_name(line).unwrap_or("");
            if line.trim().is_empty() || is_unread_write(line, event) {
                continue;
            }
            readers
                .line(line, event)
                .map_err(|e| format!("trace line {n}: {e}"))?;
        }
    }
    Ok(readers)
}

impl LiveReport {
    /// Waits for the report thread (the [`Feeder`] must be dropped first,
    /// with the run's trace), then writes the rest of the report into
    /// `dir`, which by now holds `summary.json`.
    pub fn finish(self, dir: &Path) -> Result<Written, String> {
        let readers = self
            .worker
            .join()
            .map_err(|_| "the report thread failed".to_string())??;
        finish_outputs(dir, readers, &self.perfetto_path)
    }
}
