//! The Alibaba GPU cluster trace v2023 ("openb", from `alibaba/clusterdata`,
//! `cluster-trace-gpu-v2023`, CC BY 4.0), read as it is published:
//!
//! - `openb_node_list_*.csv`: `sn, cpu_milli, memory_mib, gpu, model`, one
//!   machine a row; each becomes a simulated node with its kubelet.
//! - `openb_pod_list_*.csv`: `name, cpu_milli, memory_mib, num_gpu,
//!   gpu_milli, gpu_spec, qos, pod_phase, creation_time, deletion_time,
//!   scheduled_time` (times in seconds), one task a row; each becomes a Pod
//!   submitted at its creation time.
//!
//! A task that was scheduled runs for `deletion − scheduled` once it starts
//! here (so a planner sees the work delayed, not cut short, when pods wait
//! longer than they did in production); one that never started is deleted
//! at its deletion time, as its owner gave up on it; one without a deletion
//! time runs to the end. A `Failed` task exits 1.

use std::path::Path;

use super::task::{Task, TaskTable};
use super::trace_file::{columns, line_of, open_csv, MAX_RECORDS};
use super::{Machine, TraceError};
use crate::api::limits::MAX_NODES;
use crate::sim::{SimDuration, SimTime};

/// Which tasks of the trace to take.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Trace seconds: the run's time zero is `from`.
    pub from: u64,
    pub until: u64,
    pub limit: u64,
}

/// Reads the machines of a node list.
pub fn read_nodes(path: &Path) -> Result<Vec<Machine>, Vec<TraceError>> {
    let mut r = open_csv(path).map_err(|m| vec![TraceError::file(m)])?;
    let headers = r
        .headers()
        .map_err(|e| vec![TraceError::file(e.to_string())])?
        .clone();
    let [sn, cpu, mem, gpu, model] =
        columns(&headers, ["sn", "cpu_milli", "memory_mib", "gpu", "model"])
            .map_err(|m| vec![TraceError::at(1, "", m)])?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for rec in r.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => return Err(vec![TraceError::file(e.to_string())]),
        };
        let line = line_of(&rec);
        let mut cell = Cells {
            rec: &rec,
            line,
            headers: &headers,
            errors: &mut errors,
        };
        let name = cell.text(sn).to_string();
        if let Err(why) = crate::api::manifest::validate_dns_name(&name, false) {
            cell.error(sn, format!("`{name}` cannot name a Node: {why}"));
        }
        let m = Machine {
            name,
            cpu_milli: cell.number(cpu).unwrap_or(0),
            memory_mib: cell.number(mem).unwrap_or(0),
            gpus: cell.number(gpu).unwrap_or(0),
            gpu_model: cell.text(model).to_string(),
        };
        if errors.len() >= 20 {
            break;
        }
        out.push(m);
        if out.len() as u64 > MAX_NODES {
            return Err(vec![TraceError::at(line, "", format!(
                "more than {MAX_NODES} machines: kubesim simulates up to four times the 5,000 nodes Kubernetes is tested at"
            ))]);
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Reads the tasks of a pod list that fall in `window`.
pub fn read_tasks(path: &Path, window: Window) -> Result<TaskTable, Vec<TraceError>> {
    let mut r = open_csv(path).map_err(|m| vec![TraceError::file(m)])?;
    let headers = r
        .headers()
        .map_err(|e| vec![TraceError::file(e.to_string())])?
        .clone();
    let cols = columns(
        &headers,
        [
            "name",
            "cpu_milli",
            "memory_mib",
            "num_gpu",
            "gpu_milli",
            "gpu_spec",
            "qos",
            "pod_phase",
            "creation_time",
            "deletion_time",
            "scheduled_time",
        ],
    )
    .map_err(|m| vec![TraceError::at(1, "", m)])?;
    let mut table = TaskTable::new("alibaba.com/qos");
    let mut errors = Vec::new();
    let mut seen: u64 = 0;
    let mut record = csv::StringRecord::new();
    loop {
        match r.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(vec![TraceError::file(e.to_string())]),
        }
        seen += 1;
        if seen > MAX_RECORDS {
            return Err(vec![TraceError::file(format!(
                "more than {MAX_RECORDS} tasks"
            ))]);
        }
        if table.len() as u64 >= window.limit {
            break;
        }
        let line = line_of(&record);
        let mut cell = Cells {
            rec: &record,
            line,
            headers: &headers,
            errors: &mut errors,
        };
        if let Some((task, name)) = task_of(&mut cell, &cols, window, &mut table) {
            if let Err(why) = table.push(task, &name) {
                cell.error(cols[0], why);
            }
        }
        if errors.len() >= 20 {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    table.finish();
    Ok(table)
}

/// One row as a task, or `None` when it falls outside the window (or is
/// in error, recorded in `cell`).
fn task_of(
    cell: &mut Cells<'_>,
    c: &[usize; 11],
    window: Window,
    table: &mut TaskTable,
) -> Option<(Task, String)> {
    let [name, cpu, mem, gpus, gpu_milli, spec, qos, phase, created, deleted, scheduled] = *c;
    let created_s: u64 = cell.number(created)?;
    if created_s < window.from || created_s >= window.until {
        return None;
    }
    let secs = |s: u64| SimDuration::from_secs(s);
    let since = |s: u64| SimTime(secs(s.saturating_sub(window.from)).0);
    let mut t = Task::new(since(created_s), cell.number(cpu)?, cell.number(mem)?);
    t.gpus = cell.number(gpus)?;
    t.gpu_milli = cell.number(gpu_milli)?;
    if t.gpu_milli > 1000 {
        cell.error(
            gpu_milli,
            format!("{} is more than one GPU (1000)", t.gpu_milli),
        );
        return None;
    }
    let deleted_s: Option<u64> = cell.optional(deleted)?;
    let scheduled_s: Option<u64> = cell.optional(scheduled)?;
    match (scheduled_s, deleted_s) {
        (Some(s), Some(d)) => t.run_for = Some(secs(d.saturating_sub(s))),
        (None, Some(d)) => t.delete_at = Some(since(d.max(created_s))),
        (_, None) => {}
    }
    t.failed = cell.text(phase) == "Failed";
    let models: Vec<String> = cell
        .text(spec)
        .split('|')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    let class = cell.text(qos).to_string();
    match (table.gpu_model_index(models), table.class_index(&class)) {
        (Ok(m), Ok(q)) => (t.gpu_model, t.class) = (m, q),
        (Err(why), _) => cell.error(spec, why.into()),
        (_, Err(why)) => cell.error(qos, why.into()),
    }
    let name = cell.text(name).to_string();
    if let Err(why) = crate::api::manifest::validate_dns_name(&name, false) {
        cell.error(c[0], format!("`{name}` cannot name a Pod: {why}"));
        return None;
    }
    Some((t, name))
}

/// The cells of one record, with their errors.
struct Cells<'a> {
    rec: &'a csv::StringRecord,
    line: u32,
    headers: &'a csv::StringRecord,
    errors: &'a mut Vec<TraceError>,
}

impl Cells<'_> {
    fn text(&self, i: usize) -> &str {
        self.rec.get(i).unwrap_or("").trim()
    }

    fn error(&mut self, i: usize, message: String) {
        let column = self.headers.get(i).unwrap_or("").trim().to_string();
        self.errors
            .push(TraceError::at(self.line, &column, message));
    }

    /// A whole non-negative number (the trace writes `12000`, sometimes
    /// `12000.0`).
    fn number<T: TryFrom<u64>>(&mut self, i: usize) -> Option<T> {
        match self.optional(i)? {
            Some(v) => Some(v),
            None => {
                self.error(i, "Required value: the cell is empty".into());
                None
            }
        }
    }

    fn optional<T: TryFrom<u64>>(&mut self, i: usize) -> Option<Option<T>> {
        let s = self.text(i);
        if s.is_empty() {
            return Some(None);
        }
        let whole = s.strip_suffix(".0").unwrap_or(s);
        match whole.parse::<u64>().ok().and_then(|v| T::try_from(v).ok()) {
            Some(v) => Some(Some(v)),
            None => {
                self.error(
                    i,
                    format!("`{s}` is not a whole number of zero or more in range"),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kubesim-openb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const HEAD: &str = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n";
    const ALL: Window = Window {
        from: 0,
        until: u64::MAX,
        limit: u64::MAX,
    };

    #[test]
    fn tasks_read_with_their_run_time_deletion_and_gpu_models() {
        let p = write(
            "pods.csv",
            &format!("{HEAD}t-2,6000,12288,1,460,V100M16|V100M32,LS,Running,40,1040,100\nt-1,1000,512,0,0,,BE,Pending,10,70,\nt-3,500,256,0,0,,BE,Failed,60,,60\n"),
        );
        let t = read_tasks(&p, ALL).unwrap();
        assert_eq!(t.len(), 3);
        // Sorted by creation: t-1 (10 s), t-2 (40 s), t-3 (60 s).
        assert_eq!([t.name(0), t.name(1), t.name(2)], ["t-1", "t-2", "t-3"]);
        // t-1 never ran: deleted at 70 s.
        assert_eq!(t.get(0).unwrap().delete_at, Some(SimTime(70_000_000_000)));
        // t-2 ran from 100 s to 1040 s: 940 s once started.
        assert_eq!(t.get(1).unwrap().run_for, Some(SimDuration::from_secs(940)));
        let d = t.draw(1);
        assert_eq!(d.requests["nvidia.com/gpu"], "1");
        assert_eq!(d.node_in.as_ref().unwrap().1, ["V100M16", "V100M32"]);
        assert_eq!(d.labels["alibaba.com/qos"], "LS");
        // t-3 has no deletion: runs to the end, and exits 1.
        assert_eq!(t.get(2).unwrap().run_for, None);
        assert_eq!(t.draw(2).annotations["kubesim.io/exit-code"], "1");
    }

    #[test]
    fn a_window_shifts_time_zero_and_a_limit_stops_early() {
        let p = write(
            "pods2.csv",
            &format!("{HEAD}a,1,1,0,0,,LS,Running,5,9,5\nb,1,1,0,0,,LS,Running,100,200,150\nc,1,1,0,0,,LS,Running,120,200,130\nd,1,1,0,0,,LS,Running,130,200,130\n"),
        );
        let w = Window {
            from: 100,
            until: 1000,
            limit: 2,
        };
        let t = read_tasks(&p, w).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(1).unwrap().at, SimTime(20_000_000_000));
    }

    #[test]
    fn a_bad_cell_names_its_line_and_column() {
        let p = write(
            "bad.csv",
            &format!("{HEAD}a,1,1,0,0,,LS,Running,5,9,5\nb,lots,1,0,0,,LS,Running,5,9,5\n"),
        );
        let e = read_tasks(&p, ALL).unwrap_err();
        assert_eq!(e[0].line, Some(3));
        assert_eq!(e[0].column, "cpu_milli");
        assert!(e[0].message.contains("`lots`"), "{}", e[0].message);
    }

    #[test]
    fn machines_read_with_their_gpus() {
        let p = write(
            "nodes.csv",
            "sn,cpu_milli,memory_mib,gpu,model\nn-0,64000,262144,2,P100\nn-1,32000,131072,0,\n",
        );
        let m = read_nodes(&p).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].gpus, m[0].gpu_model.as_str()), (2, "P100"));
        let e = read_nodes(&write("nodes-bad.csv", "sn,cpu\nx,1\n")).unwrap_err();
        assert!(e[0].message.contains("memory_mib"), "{}", e[0].message);
    }
}
