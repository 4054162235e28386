//! Writes a run's charts and `timeseries.csv` into its directory, from the
//! trace alone: what `kubesim run` does after every run and `kubesim report
//! DIR` does again for a saved one.

use std::path::{Path, PathBuf};

use super::charts::{charts, ChartSpec};
use super::series::RunSeries;

/// What was written, for the caller to list.
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<PathBuf>,
}

/// `timeseries.csv`: one row per change of a charted series, long format
/// (`t_seconds,series,value`), series in a stable order.
pub fn timeseries_csv(s: &RunSeries) -> String {
    let mut out = String::from("t_seconds,series,value\n");
    for (name, series) in s.named() {
        for (t, v) in series {
            out.push_str(&format!("{t:.6},{name},{v}\n"));
        }
    }
    out
}

fn write(path: PathBuf, bytes: &[u8], w: &mut Written) -> Result<(), String> {
    std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
    w.files.push(path);
    Ok(())
}

/// Reads `dir/trace.jsonl` and writes `dir/charts/*.svg|png` and
/// `dir/timeseries.csv`.
pub fn write_report(dir: &Path) -> Result<Written, String> {
    let trace = dir.join("trace.jsonl");
    let file =
        std::fs::File::open(&trace).map_err(|e| format!("reading {}: {e}", trace.display()))?;
    let series = RunSeries::from_reader(std::io::BufReader::with_capacity(1 << 20, file))
        .map_err(|e| format!("{}: {e}", trace.display()))?;
    write_from(dir, &series)
}

/// Writes the charts and the CSV of `series` under `dir`.
pub fn write_from(dir: &Path, series: &RunSeries) -> Result<Written, String> {
    let mut w = Written::default();
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir)
        .map_err(|e| format!("creating {}: {e}", charts_dir.display()))?;
    for spec in charts(series) {
        let stem = spec.file_stem();
        write(
            charts_dir.join(format!("{stem}.svg")),
            spec.svg(series)?.as_bytes(),
            &mut w,
        )?;
        write(
            charts_dir.join(format!("{stem}.png")),
            &spec.png(series)?,
            &mut w,
        )?;
    }
    write(
        dir.join("timeseries.csv"),
        timeseries_csv(series).as_bytes(),
        &mut w,
    )?;
    Ok(w)
}

/// The chart stems a run would get (for tests and listings).
pub fn chart_names(series: &RunSeries) -> Vec<String> {
    charts(series).iter().map(ChartSpec::file_stem).collect()
}
