//! Completion indexes of an Indexed Job, and `status.completedIndexes` in
//! upstream's compressed form (`1,3-5,7`).

use std::collections::BTreeSet;

/// `batch.kubernetes.io/job-completion-index`, annotation and label.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Formats a set of indexes as upstream's `orderedIntervals.String()` does:
/// every run of two or more consecutive indexes becomes `a-b`.
pub fn format(indexes: &BTreeSet<i64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(i64, i64)> = None;
    for &i in indexes {
        run = match run {
            Some((a, b)) if i == b + 1 => Some((a, i)),
            Some((a, b)) => {
                out.push(interval(a, b));
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    if let Some((a, b)) = run {
        out.push(interval(a, b));
    }
    out.join(",")
}

fn interval(a: i64, b: i64) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

/// Parses `1,3-5` back; anything unreadable is skipped.
pub fn parse(s: &str) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    out.insert(a);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_runs_as_ranges_and_reads_them_back() {
        let s: BTreeSet<i64> = [0, 1, 2, 4, 6, 7].into();
        assert_eq!(format(&s), "0-2,4,6-7");
        assert_eq!(parse("0-2,4,6-7"), s);
        assert_eq!(format(&BTreeSet::new()), "");
    }
}
