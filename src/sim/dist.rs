//! Latency distributions, usable by every modelled component.
//!
//! All draws come from the caller's own [`RngStream`], so a distribution holds
//! no randomness itself and can be shared and cloned freely. Samples are whole
//! nanoseconds, never negative. Their logarithms and exponentials go through
//! `libm`, which rounds alike on every platform, so a draw is the same number
//! on every machine (the platform's `ln`/`exp` may differ in the last bit).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::rng::RngStream;
use super::time::{parse_duration, SimDuration};

/// The z-score of the 99th percentile of a standard normal.
pub const Z99: f64 = 2.326_347_874_040_841;

/// A distribution of durations.
#[derive(Clone, Debug, PartialEq)]
pub enum LatencyDist {
    /// Always the same value.
    Constant(SimDuration),
    /// Uniform between `lo` and `hi` inclusive.
    Uniform { lo: SimDuration, hi: SimDuration },
    /// Normal with the given mean and standard deviation, truncated at zero.
    Normal {
        mean: SimDuration,
        stddev: SimDuration,
    },
    /// Log-normal given by its median and 99th percentile, the way latency
    /// figures are usually published (etcd's tuning guide, SIG Scalability SLOs).
    LogNormal {
        mu: f64,
        sigma: f64,
        p50: SimDuration,
        p99: SimDuration,
    },
    /// Exponential with the given mean.
    Exponential { mean: SimDuration },
    /// Draws uniformly from recorded samples (say, a measured fsync histogram).
    Empirical {
        samples: Arc<[SimDuration]>,
        source: String,
    },
}

impl LatencyDist {
    pub fn constant(d: SimDuration) -> Self {
        LatencyDist::Constant(d)
    }

    /// Log-normal with median `p50` and 99th percentile `p99`. When `p99` is not
    /// above `p50` the distribution degenerates to the constant `p50`.
    pub fn log_normal(p50: SimDuration, p99: SimDuration) -> Self {
        let p50n = p50.nanos().max(1) as f64;
        let p99n = p99.nanos().max(1) as f64;
        let sigma = if p99n > p50n {
            libm::log(p99n / p50n) / Z99
        } else {
            0.0
        };
        LatencyDist::LogNormal {
            mu: libm::log(p50n),
            sigma,
            p50,
            p99,
        }
    }

    /// Draws one duration from `rng`.
    #[inline]
    pub fn sample(&self, rng: &mut RngStream) -> SimDuration {
        match self {
            LatencyDist::Constant(d) => *d,
            LatencyDist::Uniform { lo, hi } => SimDuration(rng.range_inclusive(lo.0, hi.0)),
            LatencyDist::Normal { mean, stddev } => {
                let x = mean.0 as f64 + stddev.0 as f64 * rng.standard_normal();
                SimDuration(clamp_nanos(x))
            }
            LatencyDist::LogNormal { mu, sigma, .. } => {
                if *sigma == 0.0 {
                    return SimDuration(clamp_nanos(libm::exp(*mu)));
                }
                let x = libm::exp(mu + sigma * rng.standard_normal());
                SimDuration(clamp_nanos(x))
            }
            LatencyDist::Exponential { mean } => {
                let u = 1.0 - rng.unit();
                SimDuration(clamp_nanos(-libm::log(u) * mean.0 as f64))
            }
            LatencyDist::Empirical { samples, .. } => {
                if samples.is_empty() {
                    return SimDuration::ZERO;
                }
                let i = rng.range_inclusive(0, samples.len() as u64 - 1) as usize;
                samples[i]
            }
        }
    }

    /// The distribution's median, for summaries and documentation.
    pub fn median(&self) -> SimDuration {
        match self {
            LatencyDist::Constant(d) => *d,
            LatencyDist::Uniform { lo, hi } => SimDuration((lo.0 + hi.0) / 2),
            LatencyDist::Normal { mean, .. } => *mean,
            LatencyDist::LogNormal { p50, .. } => *p50,
            LatencyDist::Exponential { mean } => {
                SimDuration((mean.0 as f64 * std::f64::consts::LN_2) as u64)
            }
            LatencyDist::Empirical { samples, .. } => {
                let mut v: Vec<_> = samples.to_vec();
                v.sort();
                v.get(v.len() / 2).copied().unwrap_or_default()
            }
        }
    }
}

fn clamp_nanos(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= u64::MAX as f64 {
        u64::MAX
    } else {
        x.round() as u64
    }
}

/// The YAML form of a distribution in a scenario: a mapping with exactly one
/// of these keys.
///
/// ```yaml
/// latency: {constant: 2ms}
/// latency: {uniform: {min: 1ms, max: 3ms}}
/// latency: {normal: {mean: 2ms, stddev: 500us}}
/// latency: {logNormal: {p50: 1ms, p99: 8ms}}
/// latency: {exponential: {mean: 2ms}}
/// latency: {empirical: {file: fsync.csv}}        # one duration or number of ms per line
/// ```
///
/// A struct of options rather than an enum so that a misspelled key is
/// reported as an unknown field with a suggestion, like every other field.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LatencySpec {
    pub constant: Option<String>,
    pub uniform: Option<UniformSpec>,
    pub normal: Option<NormalSpec>,
    pub log_normal: Option<LogNormalSpec>,
    pub exponential: Option<ExponentialSpec>,
    pub empirical: Option<EmpiricalSpec>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UniformSpec {
    pub min: String,
    pub max: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NormalSpec {
    pub mean: String,
    pub stddev: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LogNormalSpec {
    pub p50: String,
    pub p99: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExponentialSpec {
    pub mean: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EmpiricalSpec {
    pub file: String,
    /// The CSV column to read, by its header (`cpu_milli`); without it,
    /// the first column of a file with one sample per line.
    pub column: Option<String>,
    /// A unit appended to every bare number of the column (`m` for
    /// millicores, `Mi`, `s`), so a trace's own columns read as they are.
    pub unit: Option<String>,
}

/// Reads one magnitude from its text: a duration, a quantity. The error
/// says what was expected.
pub type ParseMagnitude<'a> = &'a dyn Fn(&str) -> Result<u64, String>;

/// A duration as [`LatencySpec`] reads it: `1.5ms`, or a bare number of
/// milliseconds.
pub fn parse_latency(s: &str) -> Result<u64, String> {
    if let Ok(ms) = s.parse::<f64>() {
        if ms < 0.0 || !ms.is_finite() {
            return Err(format!("negative or invalid duration `{s}`"));
        }
        return Ok((ms * 1e6).round() as u64);
    }
    parse_duration(s).map(|d| d.0).map_err(|e| e.0)
}

impl LatencySpec {
    /// Resolves the spec as durations; `base_dir` anchors relative CSV paths.
    pub fn resolve(&self, base_dir: &std::path::Path) -> Result<LatencyDist, String> {
        let strict = |s: &str| parse_duration(s).map(|d| d.0).map_err(|e| e.0);
        self.resolve_with(base_dir, &strict, &parse_latency)
    }

    /// Resolves the spec over any magnitude: `parse` reads the values
    /// written in the scenario, `parse_sample` those of an empirical file.
    /// The result's "durations" are then magnitudes in the parser's unit
    /// (the workload generators draw millicores and bytes this way).
    pub fn resolve_with(
        &self,
        base_dir: &std::path::Path,
        parse: ParseMagnitude<'_>,
        parse_sample: ParseMagnitude<'_>,
    ) -> Result<LatencyDist, String> {
        let d = |field: &str, s: &str| {
            parse(s)
                .map(SimDuration)
                .map_err(|e| format!("{field}: {e}"))
        };
        let given = [
            self.constant.is_some(),
            self.uniform.is_some(),
            self.normal.is_some(),
            self.log_normal.is_some(),
            self.exponential.is_some(),
            self.empirical.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if given != 1 {
            return Err(format!(
                "give exactly one of constant, uniform, normal, logNormal, exponential, empirical (found {given})"
            ));
        }
        if let Some(s) = &self.constant {
            return Ok(LatencyDist::Constant(d("constant", s)?));
        }
        if let Some(UniformSpec { min, max }) = &self.uniform {
            let (lo, hi) = (d("uniform.min", min)?, d("uniform.max", max)?);
            if hi < lo {
                return Err(format!("uniform: max `{max}` is below min `{min}`"));
            }
            return Ok(LatencyDist::Uniform { lo, hi });
        }
        if let Some(NormalSpec { mean, stddev }) = &self.normal {
            return Ok(LatencyDist::Normal {
                mean: d("normal.mean", mean)?,
                stddev: d("normal.stddev", stddev)?,
            });
        }
        if let Some(LogNormalSpec { p50, p99 }) = &self.log_normal {
            let (a, b) = (d("logNormal.p50", p50)?, d("logNormal.p99", p99)?);
            if b < a {
                return Err(format!("logNormal: p99 `{p99}` is below p50 `{p50}`"));
            }
            return Ok(LatencyDist::log_normal(a, b));
        }
        if let Some(ExponentialSpec { mean }) = &self.exponential {
            return Ok(LatencyDist::Exponential {
                mean: d("exponential.mean", mean)?,
            });
        }
        let spec = self.empirical.as_ref().expect("one is given");
        let path = base_dir.join(&spec.file);
        let text = crate::api::source::read_source(&path)
            .map_err(|e| format!("empirical: cannot read `{}`: {e}", path.display()))?;
        let unit = spec.unit.as_deref().unwrap_or("");
        let with_unit = |cell: &str| match cell.parse::<f64>() {
            Ok(_) => parse_sample(&format!("{cell}{unit}")),
            Err(_) => parse_sample(cell),
        };
        let samples = match &spec.column {
            None => parse_samples(&text, &with_unit),
            Some(c) => parse_samples_column(&text, c, &with_unit),
        }
        .map_err(|e| format!("empirical: {}: {e}", path.display()))?;
        Ok(LatencyDist::Empirical {
            samples: samples.into(),
            source: spec.file.clone(),
        })
    }
}

/// Reads one sample per line: a duration (`1.2ms`) or a bare number of
/// milliseconds; takes the first comma-separated column, skips a header line
/// and `#` comments.
pub fn parse_samples_csv(text: &str) -> Result<Vec<SimDuration>, String> {
    parse_samples(text, &parse_latency)
}

/// One sample per line read by `parse` (first comma-separated column; a
/// header line and `#` comments skipped).
fn parse_samples(text: &str, parse: ParseMagnitude<'_>) -> Result<Vec<SimDuration>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cell = line.split(',').next().unwrap_or("").trim();
        if cell.is_empty() || cell.starts_with('#') {
            continue;
        }
        match parse(cell) {
            Ok(v) => out.push(SimDuration(v)),
            Err(_) if i == 0 => continue, // header
            Err(e) => return Err(format!("line {}: {e}", i + 1)),
        }
    }
    if out.is_empty() {
        return Err("no samples".into());
    }
    Ok(out)
}

/// The column headed `column` of a CSV file, every non-empty cell read by
/// `parse`; an error names the line.
fn parse_samples_column(
    text: &str,
    column: &str,
    parse: ParseMagnitude<'_>,
) -> Result<Vec<SimDuration>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let Some(index) = headers.iter().position(|h| h.trim() == column) else {
        let names: Vec<&str> = headers.iter().collect();
        return Err(format!(
            "no column `{column}` (the header names {})",
            names.join(", ")
        ));
    };
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = record.get(index).unwrap_or("").trim();
        if cell.is_empty() {
            continue;
        }
        let v = parse(cell).map_err(|e| format!("line {line}, column `{column}`: {e}"))?;
        out.push(SimDuration(v));
    }
    if out.is_empty() {
        return Err(format!("column `{column}` holds no samples"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantile(dist: &LatencyDist, q: f64) -> f64 {
        let mut rng = RngStream::derive(7, "dist-test");
        let mut v: Vec<u64> = (0..20_000).map(|_| dist.sample(&mut rng).0).collect();
        v.sort();
        v[((v.len() as f64) * q) as usize] as f64
    }

    #[test]
    fn log_normal_hits_its_published_percentiles() {
        let d = LatencyDist::log_normal(SimDuration::from_millis(1), SimDuration::from_millis(8));
        let p50 = quantile(&d, 0.5) / 1e6;
        let p99 = quantile(&d, 0.99) / 1e6;
        assert!((p50 - 1.0).abs() < 0.05, "p50 {p50}");
        assert!((p99 - 8.0).abs() < 0.8, "p99 {p99}");
    }

    #[test]
    fn exponential_and_uniform_have_their_means() {
        let e = LatencyDist::Exponential {
            mean: SimDuration::from_millis(2),
        };
        let mut rng = RngStream::derive(1, "x");
        let mean: f64 = (0..20_000)
            .map(|_| e.sample(&mut rng).0 as f64)
            .sum::<f64>()
            / 20_000.0;
        assert!((mean / 1e6 - 2.0).abs() < 0.1, "{mean}");
        let u = LatencyDist::Uniform {
            lo: SimDuration(10),
            hi: SimDuration(20),
        };
        for _ in 0..1000 {
            let s = u.sample(&mut rng).0;
            assert!((10..=20).contains(&s));
        }
    }

    #[test]
    fn normal_never_goes_negative() {
        let n = LatencyDist::Normal {
            mean: SimDuration(10),
            stddev: SimDuration(100),
        };
        let mut rng = RngStream::derive(3, "n");
        for _ in 0..1000 {
            let _ = n.sample(&mut rng); // u64: non-negative by construction
        }
        assert!(quantile(&n, 0.1) == 0.0);
    }

    #[test]
    fn empirical_samples_parse_from_csv() {
        let s = parse_samples_csv("latency_ms\n1.5\n2ms\n# note\n3\n").unwrap();
        assert_eq!(
            s,
            vec![
                SimDuration(1_500_000),
                SimDuration(2_000_000),
                SimDuration(3_000_000)
            ]
        );
        assert!(parse_samples_csv("x\n-1\n").is_err());
    }
}
