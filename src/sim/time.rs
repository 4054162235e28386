//! Virtual time: integer nanoseconds since the start of the run.
//!
//! Integer time keeps ordering exact (no epsilon comparisons) and makes a run
//! a pure function of its inputs. `SimTime` is an instant, `SimDuration` a span.

use std::fmt;

/// An instant of virtual time, in nanoseconds since the run began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// A span of virtual time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

pub const NANOS_PER_MICRO: u64 = 1_000;
pub const NANOS_PER_MILLI: u64 = 1_000_000;
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub fn nanos(self) -> u64 {
        self.0
    }

    /// Adds a span, saturating at the end of representable time.
    pub fn after(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }

    /// The span from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }

    /// RFC 3339 timestamp of this instant, counting from the scenario epoch
    /// (2025-01-01T00:00:00Z) at one-second resolution, as Kubernetes'
    /// `metav1.Time` serialises.
    pub fn rfc3339(self) -> String {
        rfc3339_from_secs(EPOCH_UNIX_SECS + self.0 / NANOS_PER_SEC)
    }

    /// RFC 3339 with microseconds, as `metav1.MicroTime` (Lease renewTime) serialises.
    pub fn rfc3339_micro(self) -> String {
        let secs = EPOCH_UNIX_SECS + self.0 / NANOS_PER_SEC;
        let micros = (self.0 % NANOS_PER_SEC) / NANOS_PER_MICRO;
        let base = rfc3339_from_secs(secs);
        format!("{}.{:06}Z", &base[..base.len() - 1], micros)
    }
}

impl SimTime {
    /// Reads back an RFC 3339 timestamp (`2025-01-01T00:01:09Z`, fractions
    /// allowed) as the simulator writes them; `None` before the epoch or if
    /// malformed.
    pub fn parse_rfc3339(s: &str) -> Option<SimTime> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let mut nanos = 0u64;
        if b[19] == b'.' {
            let end = s[20..].find(|c: char| !c.is_ascii_digit())? + 20;
            let frac = &s[20..end];
            let digits = frac.len().min(9);
            nanos = frac[..digits].parse::<u64>().ok()? * 10u64.pow(9 - digits as u32);
        }
        let days = days_from_civil(y, m as u32, d as u32);
        let unix = days * 86_400 + hh * 3600 + mm * 60 + ss;
        let since = unix.checked_sub(EPOCH_UNIX_SECS as i64)?;
        u64::try_from(since)
            .ok()
            .map(|s| SimTime(s * NANOS_PER_SEC + nanos))
    }
}

/// Proleptic Gregorian date to days since 1970-01-01 (Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of the virtual clock's zero: 2025-01-01T00:00:00Z. Fixed so that
/// timestamps in traces are the same on every machine.
pub const EPOCH_UNIX_SECS: u64 = 1_735_689_600;

fn rfc3339_from_secs(unix: u64) -> String {
    let days = unix / 86_400;
    let rem = unix % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        y,
        m,
        d,
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);

    pub const fn from_nanos(n: u64) -> Self {
        SimDuration(n)
    }
    pub const fn from_micros(us: u64) -> Self {
        SimDuration(us * NANOS_PER_MICRO)
    }
    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(ms * NANOS_PER_MILLI)
    }
    pub const fn from_secs(s: u64) -> Self {
        SimDuration(s * NANOS_PER_SEC)
    }
    pub fn nanos(self) -> u64 {
        self.0
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_MILLI as f64
    }
    pub fn saturating_mul(self, k: u64) -> Self {
        SimDuration(self.0.saturating_mul(k))
    }
    pub fn min(self, other: Self) -> Self {
        if self.0 <= other.0 {
            self
        } else {
            other
        }
    }
}

impl std::ops::Add for SimDuration {
    type Output = SimDuration;
    fn add(self, rhs: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(rhs.0))
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", SimDuration(self.0))
    }
}

impl fmt::Display for SimDuration {
    /// Human form: `1h2m3.5s`, `250ms`, `12µs`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n == 0 {
            return write!(f, "0s");
        }
        if n < NANOS_PER_MICRO {
            return write!(f, "{n}ns");
        }
        if n < NANOS_PER_MILLI {
            return write!(f, "{}µs", trim(n as f64 / NANOS_PER_MICRO as f64));
        }
        if n < NANOS_PER_SEC {
            return write!(f, "{}ms", trim(n as f64 / NANOS_PER_MILLI as f64));
        }
        let total_secs = n / NANOS_PER_SEC;
        let h = total_secs / 3600;
        let m = (total_secs / 60) % 60;
        let s = (n % (60 * NANOS_PER_SEC)) as f64 / NANOS_PER_SEC as f64;
        let mut out = String::new();
        if h > 0 {
            out += &format!("{h}h");
        }
        if m > 0 {
            out += &format!("{m}m");
        }
        if s > 0.0 || out.is_empty() {
            out += &format!("{}s", trim(s));
        }
        f.write_str(&out)
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(pub String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a Go-style duration (`1h30m`, `250ms`, `1.5s`, `10us`, `0`), the
/// format Kubernetes component flags use. Negative durations are rejected:
/// nothing in a scenario can happen before it began.
pub fn parse_duration(text: &str) -> Result<SimDuration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError("empty duration".into()));
    }
    if s.starts_with('-') {
        return Err(DurationError(format!(
            "negative duration `{s}`: durations must be zero or positive"
        )));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(SimDuration::ZERO);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        if start == i {
            return Err(DurationError(format!(
                "invalid duration `{text}`: expected a number at `{}`",
                &s[start..]
            )));
        }
        let number = &s[start..i];
        let unit_start = i;
        while i < bytes.len() && !(bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let unit = &s[unit_start..i];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => NANOS_PER_MICRO as u128,
            "ms" => NANOS_PER_MILLI as u128,
            "s" => NANOS_PER_SEC as u128,
            "m" => 60 * NANOS_PER_SEC as u128,
            "h" => 3600 * NANOS_PER_SEC as u128,
            "" => {
                return Err(DurationError(format!(
                    "invalid duration `{text}`: missing unit (use ns, us, ms, s, m or h)"
                )))
            }
            other => {
                return Err(DurationError(format!(
                    "invalid duration `{text}`: unknown unit `{other}` (use ns, us, ms, s, m or h)"
                )))
            }
        };
        total += scaled_decimal(number, scale).ok_or_else(|| {
            DurationError(format!("invalid duration `{text}`: bad number `{number}`"))
        })?;
        if total > u64::MAX as u128 {
            return Err(DurationError(format!("duration `{text}` is too long")));
        }
    }
    Ok(SimDuration(total as u64))
}

/// `number * scale` for a decimal like `1.25`, exactly, truncating below 1 ns.
fn scaled_decimal(number: &str, scale: u128) -> Option<u128> {
    let (int, frac) = match number.split_once('.') {
        Some((a, b)) => (a, b),
        None => (number, ""),
    };
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return None;
    }
    let int_v: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int_v.checked_mul(scale)?;
    let mut place = scale;
    for c in frac.chars() {
        place /= 10;
        if place == 0 {
            break;
        }
        value += c.to_digit(10)? as u128 * place;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_reads_back_what_it_writes() {
        for t in [0u64, 69, 86_399, 86_400 * 400 + 3_723] {
            let at = SimTime(t * NANOS_PER_SEC);
            assert_eq!(SimTime::parse_rfc3339(&at.rfc3339()), Some(at));
        }
        let micro = SimTime(5 * NANOS_PER_SEC + 250_000_000);
        assert_eq!(SimTime::parse_rfc3339(&micro.rfc3339_micro()), Some(micro));
        assert_eq!(SimTime::parse_rfc3339("2024-12-31T23:59:59Z"), None);
        assert_eq!(SimTime::parse_rfc3339("yesterday"), None);
    }

    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("10s").unwrap(), SimDuration::from_secs(10));
        assert_eq!(
            parse_duration("1h30m").unwrap(),
            SimDuration::from_secs(5400)
        );
        assert_eq!(
            parse_duration("1.5s").unwrap(),
            SimDuration::from_millis(1500)
        );
        assert_eq!(
            parse_duration("250ms").unwrap(),
            SimDuration::from_millis(250)
        );
        assert_eq!(
            parse_duration("10us").unwrap(),
            SimDuration::from_micros(10)
        );
        assert_eq!(parse_duration("0").unwrap(), SimDuration::ZERO);
        assert!(parse_duration("-5s").unwrap_err().0.contains("negative"));
        assert!(parse_duration("5").unwrap_err().0.contains("missing unit"));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn displays_human_units() {
        assert_eq!(SimDuration::from_secs(3723).to_string(), "1h2m3s");
        assert_eq!(SimDuration::from_millis(1500).to_string(), "1.5s");
        assert_eq!(SimDuration::from_millis(250).to_string(), "250ms");
        assert_eq!(SimDuration::ZERO.to_string(), "0s");
    }

    #[test]
    fn timestamps_count_from_the_fixed_epoch() {
        assert_eq!(SimTime::ZERO.rfc3339(), "2025-01-01T00:00:00Z");
        assert_eq!(
            SimTime(86_400 * NANOS_PER_SEC + 1).rfc3339(),
            "2025-01-02T00:00:00Z"
        );
        assert_eq!(
            SimTime(1_500_000).rfc3339_micro(),
            "2025-01-01T00:00:00.001500Z"
        );
    }
}
