//! Completion indexes of an Indexed Job (`indexed_job_utils.go`): the pod
//! annotations that carry an index and its failure counts, and
//! `status.completedIndexes` / `status.failedIndexes` in upstream's
//! compressed form (`1,3-5,7`).

use std::collections::BTreeSet;

use crate::api::Object;

/// `batch.kubernetes.io/job-completion-index`, annotation and label.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// `batch.kubernetes.io/job-index-failure-count`: failures of the index
/// counted against `backoffLimitPerIndex` before this pod was created.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// `batch.kubernetes.io/job-index-ignored-failure-count`: failures the pod
/// failure policy told the controller to ignore.
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";

/// The pod's completion index (`getCompletionIndex`): absent, unreadable or
/// negative is `None`.
pub fn index_of(p: &Object) -> Option<i64> {
    p.meta
        .annotations
        .get(COMPLETION_INDEX)?
        .parse()
        .ok()
        .filter(|i: &i64| *i >= 0)
}

/// An annotation as a non-negative int32, 0 when absent or out of range
/// (`parseInt32`).
fn count_annotation(p: &Object, key: &str) -> i64 {
    p.meta
        .annotations
        .get(key)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| (0..=i64::from(i32::MAX)).contains(v))
        .unwrap_or(0)
}

/// `getIndexFailureCount`.
pub fn failure_count(p: &Object) -> i64 {
    count_annotation(p, INDEX_FAILURE_COUNT)
}

/// `getIndexAbsoluteFailureCount`: counted and ignored failures together.
pub fn absolute_failure_count(p: &Object) -> i64 {
    failure_count(p) + count_annotation(p, INDEX_IGNORED_FAILURE_COUNT)
}

/// Formats a set of indexes as upstream's `orderedIntervals.String()` does:
/// a run of three or more consecutive indexes becomes `a-b`, a run of two
/// stays `a,b`.
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
    match b - a {
        0 => a.to_string(),
        1 => format!("{a},{b}"),
        _ => format!("{a}-{b}"),
    }
}

/// Parses `1,3-5` back as `parseIndexesFromString` does: an unreadable
/// interval is skipped, the first one at or past `completions` ends the
/// list, and an interval running past it is cut at `completions - 1`.
pub fn parse(s: &str, completions: i64) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let mut limits = part.split('-');
        let Some(Ok(first)) = limits.next().map(str::parse::<i64>) else {
            continue;
        };
        if first >= completions {
            break;
        }
        let last = match limits.next() {
            Some(l) => match l.parse::<i64>() {
                Ok(l) => l.min(completions - 1),
                Err(_) => continue,
            },
            None => first,
        };
        out.extend(first..=last);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_runs_as_upstream_does_and_reads_them_back() {
        // Upstream's own table (indexed_job_utils_test.go): "1,2" for a
        // run of two, "3-5" for three.
        let s: BTreeSet<i64> = [0, 1, 2, 4, 6, 7].into();
        assert_eq!(format(&s), "0-2,4,6,7");
        assert_eq!(parse("0-2,4,6,7", 10), s);
        assert_eq!(format(&BTreeSet::new()), "");
    }

    #[test]
    fn parse_stops_at_completions() {
        // completions 5: "4-9" is cut to 4, "7" is past the end.
        let s = parse("0,2-3,4-9,7", 5);
        assert_eq!(s, [0, 2, 3, 4].into());
        assert!(parse("x,1", 5).contains(&1));
    }
}
