//! Google's cluster trace of 2011 (ClusterData2011, "Borg"), read as it is
//! published: headerless, gzipped CSV parts.
//!
//! - `machine_events`: `time, machine ID, event type (0 add, 1 remove,
//!   2 update), platform ID, CPUs, memory`; the machines present at the
//!   window's start become simulated nodes.
//! - `task_events`: `time, missing info, job ID, task index, machine ID,
//!   event type, user, scheduling class, priority, CPU request, memory
//!   request, disk request, different-machine constraint`; each task's first
//!   submission becomes a Pod at that time.
//!
//! Times are microseconds (0 is "before the trace", 2⁶³−1 "after it");
//! resources are normalised to the largest machine, so the import states
//! what 1.0 is (`cpuScale` cores, `memoryScale` bytes). A task that was
//! scheduled runs until its first end (evict, fail, finish, kill, lost)
//! once it starts here; one that ended before it was scheduled is deleted
//! then; a failed one exits 1. Resubmissions after an end are left out:
//! the first incarnation is the work.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::task::{Task, TaskTable};
use super::trace_file::{open_csv_maybe_gz, MAX_RECORDS};
use super::{Machine, TraceError};
use crate::sim::{SimDuration, SimTime};

/// What 1.0 of a normalised request is.
#[derive(Clone, Copy, Debug)]
pub struct Scales {
    pub cpu_cores: f64,
    pub memory_bytes: f64,
}

/// Which tasks to take, in trace microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub from_us: u64,
    pub until_us: u64,
    pub limit: u64,
}

/// "After the end of the trace".
const NEVER: u64 = i64::MAX as u64;

/// An error in one of several files: its index and the error.
pub type FileError = (usize, TraceError);

/// One record's cells.
struct Row<'a> {
    rec: &'a csv::StringRecord,
    line: u32,
}

impl Row<'_> {
    fn int(&self, i: usize, column: &str) -> Result<u64, TraceError> {
        let s = self.rec.get(i).unwrap_or("").trim();
        s.parse::<u64>().map_err(|_| {
            TraceError::at(
                self.line,
                column,
                format!("`{s}` is not a whole number of zero or more"),
            )
        })
    }

    /// A normalised request: empty is 0.
    fn share(&self, i: usize, column: &str) -> Result<f64, TraceError> {
        let s = self.rec.get(i).unwrap_or("").trim();
        if s.is_empty() {
            return Ok(0.0);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(TraceError::at(
                self.line,
                column,
                format!("`{s}` is not a share of zero or more"),
            )),
        }
    }
}

/// Every record of `paths` in order, handed to `each` with its file's index.
fn for_each_record(
    paths: &[PathBuf],
    mut each: impl FnMut(usize, &Row<'_>) -> Result<bool, TraceError>,
) -> Result<(), FileError> {
    let mut seen: u64 = 0;
    let mut rec = csv::StringRecord::new();
    for (f, path) in paths.iter().enumerate() {
        let mut r = open_csv_maybe_gz(path).map_err(|m| (f, TraceError::file(m)))?;
        loop {
            match r.read_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err((f, TraceError::file(e.to_string()))),
            }
            seen += 1;
            if seen > MAX_RECORDS * 4 {
                return Err((
                    f,
                    TraceError::file(format!("more than {} records", MAX_RECORDS * 4)),
                ));
            }
            let line = rec.position().map_or(0, |p| p.line() as u32);
            if !each(f, &Row { rec: &rec, line }).map_err(|e| (f, e))? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The machines present at `at_us`.
pub fn read_machines(
    paths: &[PathBuf],
    scales: Scales,
    at_us: u64,
) -> Result<Vec<Machine>, FileError> {
    let mut machines: BTreeMap<u64, Machine> = BTreeMap::new();
    for_each_record(paths, |_, row| {
        let t = row.int(0, "time")?;
        if t > at_us {
            return Ok(true);
        }
        let id = row.int(1, "machine ID")?;
        match row.int(2, "event type")? {
            1 => {
                machines.remove(&id);
            }
            0 | 2 => {
                let m = Machine {
                    name: format!("borg-machine-{id}"),
                    cpu_milli: (row.share(4, "CPUs")? * scales.cpu_cores * 1000.0).round() as u64,
                    memory_mib: (row.share(5, "memory")? * scales.memory_bytes / 1_048_576.0)
                        .round() as u64,
                    gpus: 0,
                    gpu_model: String::new(),
                };
                machines.insert(id, m);
            }
            other => {
                return Err(TraceError::at(
                    row.line,
                    "event type",
                    format!("{other} is not 0 (add), 1 (remove) or 2 (update)"),
                ))
            }
        }
        if machines.len() as u64 > MAX_RECORDS {
            return Err(TraceError::file(format!(
                "more than {MAX_RECORDS} machines"
            )));
        }
        Ok(true)
    })?;
    Ok(machines.into_values().collect())
}

/// A submitted task waiting for its end.
struct Open {
    submitted: u64,
    scheduled: Option<u64>,
    cpu_milli: u32,
    memory_mib: u32,
    priority: u16,
}

/// The tasks first submitted in `window`.
pub fn read_tasks(
    paths: &[PathBuf],
    scales: Scales,
    window: Window,
) -> Result<TaskTable, FileError> {
    let mut table = TaskTable::new("kubesim.io/borg-priority");
    let mut open: BTreeMap<(u64, u64), Open> = BTreeMap::new();
    let mut done: BTreeSet<(u64, u64)> = BTreeSet::new();
    let since =
        |us: u64| SimTime(SimDuration(us.saturating_sub(window.from_us).saturating_mul(1000)).0);
    let mut taken: u64 = 0;
    for_each_record(paths, |_, row| {
        let t = row.int(0, "time")?;
        let key = (row.int(2, "job ID")?, row.int(3, "task index")?);
        let kind = row.int(5, "event type")?;
        if kind > 8 {
            return Err(TraceError::at(
                row.line,
                "event type",
                format!("{kind} is not an event type (0 to 8)"),
            ));
        }
        if kind == 0 && !done.contains(&key) && !open.contains_key(&key) {
            let t = t.max(window.from_us);
            if t >= window.until_us || t == NEVER || taken >= window.limit {
                return Ok(true);
            }
            let cpu = row.share(9, "CPU request")? * scales.cpu_cores * 1000.0;
            let mem = row.share(10, "memory request")? * scales.memory_bytes / 1_048_576.0;
            let priority = row.int(8, "priority").unwrap_or(0).min(11) as u16;
            let o = Open {
                submitted: t,
                scheduled: None,
                cpu_milli: clamp(cpu),
                memory_mib: clamp(mem),
                priority,
            };
            open.insert(key, o);
            taken += 1;
            return Ok(true);
        }
        let Some(o) = open.get_mut(&key) else {
            return Ok(true);
        };
        match kind {
            1 => o.scheduled = o.scheduled.or(Some(t)),
            2..=6 => {
                let o = open.remove(&key).expect("just found");
                let failed = kind == 3;
                push(&mut table, key, o, Some(t), failed, &since);
                done.insert(key);
            }
            _ => {}
        }
        Ok(true)
    })?;
    for (key, o) in std::mem::take(&mut open) {
        push(&mut table, key, o, None, false, &since);
    }
    table.finish();
    Ok(table)
}

fn clamp(x: f64) -> u32 {
    x.round().clamp(0.0, u32::MAX as f64) as u32
}

fn push(
    table: &mut TaskTable,
    key: (u64, u64),
    o: Open,
    end: Option<u64>,
    failed: bool,
    since: &dyn Fn(u64) -> SimTime,
) {
    let mut task = Task::new(since(o.submitted), o.cpu_milli, o.memory_mib);
    match (o.scheduled, end) {
        (Some(s), Some(e)) => {
            task.run_for = Some(SimDuration(e.saturating_sub(s).saturating_mul(1000)))
        }
        (None, Some(e)) => task.delete_at = Some(since(e.max(o.submitted))),
        (_, None) => {}
    }
    task.failed = failed;
    // Priorities are 0..11, never past the table's 65,536 classes.
    task.class = table.class_index(&o.priority.to_string()).unwrap_or(0);
    // Names are unique: a (job, index) pair is taken once.
    let _ = table.push(task, &format!("borg-{}-{}", key.0, key.1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const SCALES: Scales = Scales {
        cpu_cores: 32.0,
        memory_bytes: 128.0 * 1073741824.0,
    };
    const ALL: Window = Window {
        from_us: 0,
        until_us: u64::MAX,
        limit: u64::MAX,
    };

    fn gz(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        let f = std::fs::File::create(&p).unwrap();
        let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap();
        p
    }

    #[test]
    fn tasks_pair_their_events_across_gzipped_parts() {
        let d = tempfile::tempdir().unwrap();
        // Job 7 task 0: submitted at 1 s, scheduled at 3 s, finished at 63 s.
        // Job 7 task 1: submitted at 2 s, killed at 12 s before it started.
        // Job 8 task 0: submitted at 5 s, scheduled, failed at 25 s, then
        // resubmitted (left out).
        let a = gz(d.path(), "part-00000-of-00002.csv.gz", "1000000,,7,0,,0,u,2,9,0.25,0.125,0,0\n2000000,,7,1,,0,u,2,9,0.5,0.5,0,0\n3000000,,7,0,m1,1,u,2,9,0.25,0.125,0,0\n");
        let b = gz(d.path(), "part-00001-of-00002.csv.gz", "5000000,,8,0,,0,u,0,0,,,0,0\n6000000,,8,0,m2,1,u,0,0,,,0,0\n12000000,,7,1,,5,u,2,9,0.5,0.5,0,0\n25000000,,8,0,m2,3,u,0,0,,,0,0\n26000000,,8,0,,0,u,0,0,,,0,0\n63000000,,7,0,m1,4,u,2,9,0.25,0.125,0,0\n");
        let t = read_tasks(&[a, b], SCALES, ALL).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.name(0), "borg-7-0");
        let first = t.get(0).unwrap();
        // 0.25 of 32 cores; 0.125 of 128 GiB = 16 GiB.
        assert_eq!((first.cpu_milli, first.memory_mib), (8000, 16384));
        assert_eq!(first.run_for, Some(SimDuration::from_secs(60)));
        assert_eq!(t.get(1).unwrap().delete_at, Some(SimTime(12_000_000_000)));
        let failed = t.get(2).unwrap();
        assert!(failed.failed);
        assert_eq!(failed.run_for, Some(SimDuration::from_secs(19)));
    }

    #[test]
    fn machines_present_at_the_start_and_errors_at_their_line() {
        let d = tempfile::tempdir().unwrap();
        let m = gz(
            d.path(),
            "m.csv.gz",
            "0,1,0,p,0.5,0.25\n0,2,0,p,1,1\n0,2,1,,,\n900000000,3,0,p,1,1\n",
        );
        let ms = read_machines(&[m], SCALES, 600_000_000).unwrap();
        assert_eq!(ms.len(), 1);
        assert_eq!(
            (ms[0].name.as_str(), ms[0].cpu_milli),
            ("borg-machine-1", 16_000)
        );
        let bad = gz(d.path(), "bad.csv.gz", "0,1,0,p,0.5,0.25\n0,x,0,p,1,1\n");
        let (f, e) = read_machines(&[bad], SCALES, 0).unwrap_err();
        assert_eq!((f, e.line, e.column.as_str()), (0, Some(2), "machine ID"));
    }
}
