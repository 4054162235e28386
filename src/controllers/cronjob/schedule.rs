//! Cron schedules as CronJobs write them (the standard five fields parsed
//! by robfig/cron's `ParseStandard`, plus `@hourly`-style descriptors and
//! `@every`), evaluated in UTC on the virtual clock.

use crate::sim::time::{civil_from_days, days_from_civil, EPOCH_UNIX_SECS};
use crate::sim::{SimDuration, SimTime};

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    Fields {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
        /// Day of month or day of week was `*`: both must match. Otherwise
        /// either may (cron's odd rule).
        dom_star: bool,
        dow_star: bool,
    },
    Every(SimDuration),
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(text: &str, lo: u64, hi: u64, names: &[&str], what: &str) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    let value = |s: &str| -> Result<u64, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u64 + lo);
        }
        s.parse::<u64>()
            .map_err(|_| format!("{what}: `{s}` is not a number"))
    };
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{what}: bad step `{s}`"))?,
            ),
            None => (part, 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            if step == 1 {
                star = true;
            }
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a = value(range)?;
            (a, if part.contains('/') { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return Err(format!("{what}: `{part}` is outside {lo}-{hi}"));
        }
        let mut i = a;
        while i <= b {
            bits |= 1 << i;
            i += step;
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => {
                if let Some(d) = other.strip_prefix("@every ") {
                    let d = crate::sim::parse_duration(d.trim())
                        .map_err(|e| format!("@every: {}", e.0))?;
                    if d.is_zero() {
                        return Err("@every: the interval must be positive".into());
                    }
                    return Ok(Schedule::Every(d));
                }
                other
            }
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {}: `{text}`",
                f.len()
            ));
        }
        let (minute, _) = field(f[0], 0, 59, &[], "minute")?;
        let (hour, _) = field(f[1], 0, 23, &[], "hour")?;
        let (dom, dom_star) = field(f[2], 1, 31, &[], "day of month")?;
        let (month, _) = field(f[3], 1, 12, &MONTHS, "month")?;
        let (mut dow, dow_star) = field(f[4], 0, 7, &DAYS, "day of week")?;
        // Sunday may be written 7.
        if dow & (1 << 7) != 0 {
            dow = (dow & !(1 << 7)) | 1;
        }
        Ok(Schedule::Fields {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
        })
    }

    /// The first activation strictly after `t`.
    pub fn next_after(&self, t: SimTime) -> Option<SimTime> {
        let (minute, hour, dom, month, dow, dom_star, dow_star) = match self {
            Schedule::Every(d) => {
                // robfig rounds the interval to whole seconds and adds it.
                let secs = (d.nanos() / 1_000_000_000).max(1);
                let base = t.nanos() / 1_000_000_000;
                return Some(SimTime(SimDuration::from_secs(base + secs).nanos()));
            }
            Schedule::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
                dom_star,
                dow_star,
            } => (*minute, *hour, *dom, *month, *dow, *dom_star, *dow_star),
        };
        let unix = EPOCH_UNIX_SECS as i64 + (t.nanos() / 1_000_000_000) as i64;
        let mut m = unix.div_euclid(60) + 1; // minutes since the Unix epoch
        let limit = m + 60 * 24 * 366 * 5;
        while m < limit {
            let days = m.div_euclid(60 * 24);
            let (y, mo, d) = civil_from_days(days);
            let in_day = m.rem_euclid(60 * 24);
            let (h, mi) = (in_day / 60, in_day % 60);
            if month & (1 << mo) == 0 {
                let (ny, nm) = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
                m = days_from_civil(ny, nm, 1) * 60 * 24;
                continue;
            }
            let wd = (days + 4).rem_euclid(7) as u64; // 1970-01-01 was a Thursday
            let dom_ok = dom & (1 << d) != 0;
            let dow_ok = dow & (1 << wd) != 0;
            let day_ok = if dom_star || dow_star {
                dom_ok && dow_ok
            } else {
                dom_ok || dow_ok
            };
            if !day_ok {
                m = (days + 1) * 60 * 24;
                continue;
            }
            if hour & (1 << h) == 0 {
                m = days * 60 * 24 + (h + 1) * 60;
                continue;
            }
            if minute & (1 << mi) == 0 {
                m += 1;
                continue;
            }
            let secs = m * 60 - EPOCH_UNIX_SECS as i64;
            return u64::try_from(secs)
                .ok()
                .map(|s| SimTime(SimDuration::from_secs(s).nanos()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SimTime {
        SimTime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn standard_fields_and_descriptors() {
        let every5 = Schedule::parse("*/5 * * * *").unwrap();
        assert_eq!(
            every5
                .next_after(at("2025-01-01T00:00:00Z"))
                .unwrap()
                .rfc3339(),
            "2025-01-01T00:05:00Z"
        );
        assert_eq!(
            every5
                .next_after(at("2025-01-01T00:04:59Z"))
                .unwrap()
                .rfc3339(),
            "2025-01-01T00:05:00Z"
        );
        let hourly = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            hourly
                .next_after(at("2025-01-01T10:00:00Z"))
                .unwrap()
                .rfc3339(),
            "2025-01-01T11:00:00Z"
        );
        // Weekdays at 09:30: 2025-01-04 is a Saturday.
        let weekdays = Schedule::parse("30 9 * * mon-fri").unwrap();
        assert_eq!(
            weekdays
                .next_after(at("2025-01-03T10:00:00Z"))
                .unwrap()
                .rfc3339(),
            "2025-01-06T09:30:00Z"
        );
        // Both day fields restricted: either matches (the 13th or a Friday).
        let either = Schedule::parse("0 0 13 * 5").unwrap();
        assert_eq!(
            either
                .next_after(at("2025-01-01T00:00:00Z"))
                .unwrap()
                .rfc3339(),
            "2025-01-03T00:00:00Z"
        );
        let yearly = Schedule::parse("@yearly").unwrap();
        assert_eq!(
            yearly
                .next_after(at("2025-03-01T00:00:00Z"))
                .unwrap()
                .rfc3339(),
            "2026-01-01T00:00:00Z"
        );
        let sunday7 = Schedule::parse("0 12 * * 7").unwrap();
        assert_eq!(
            sunday7
                .next_after(at("2025-01-01T00:00:00Z"))
                .unwrap()
                .rfc3339(),
            "2025-01-05T12:00:00Z"
        );
        let every = Schedule::parse("@every 90s").unwrap();
        assert_eq!(
            every
                .next_after(at("2025-01-01T00:00:00Z"))
                .unwrap()
                .rfc3339(),
            "2025-01-01T00:01:30Z"
        );
        // February 30th never comes.
        assert_eq!(
            Schedule::parse("0 0 30 2 *")
                .unwrap()
                .next_after(SimTime::ZERO),
            None
        );
    }

    #[test]
    fn bad_schedules_say_which_field() {
        assert!(Schedule::parse("* * * *").unwrap_err().contains("5 fields"));
        assert!(Schedule::parse("61 * * * *")
            .unwrap_err()
            .contains("minute"));
        assert!(Schedule::parse("* * * foo *")
            .unwrap_err()
            .contains("month"));
        assert!(Schedule::parse("*/0 * * * *").unwrap_err().contains("step"));
    }
}
