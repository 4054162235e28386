//! Delta debugging (Zeller and Hildebrandt's `ddmin`): the smallest
//! sub-list of a failing list that still fails, found with a number of
//! tests that grows with the log of the list's length when few items
//! matter.
//!
//! Why ddmin and not "drop one item at a time": a fuzzed repro has dozens
//! of fault entries and each test is a whole simulated run; removing
//! halves, then quarters, first discards the irrelevant bulk in a handful
//! of runs. The result is 1-minimal: removing any single remaining item
//! makes the failure go away.
//!
//! [`scenario`] applies it to a scenario's timeline and objects, then
//! shrinks its numbers (replicas, node counts, the horizon).

pub mod doc;
pub mod scenario;

pub use scenario::{shrink_file, shrink_scenario, ForChecker, Horizon, ShrinkError, Shrunk, Size};

use std::collections::BTreeMap;

/// What ddmin found.
#[derive(Debug, PartialEq, Eq)]
pub struct Minimal<T> {
    /// The 1-minimal failing sub-list, in the original order.
    pub items: Vec<T>,
    /// How many times the predicate was called (memoised calls excluded).
    pub tests: u32,
}

/// `ddmin` over `items`, which must fail (`fails(items)` is true; it is not
/// tested again). `fails` is called on sub-lists in the original order;
/// a configuration is tested at most once.
pub fn ddmin<T: Clone>(items: &[T], mut fails: impl FnMut(&[T]) -> bool) -> Minimal<T> {
    let mut memo: BTreeMap<Vec<usize>, bool> = BTreeMap::new();
    let mut tests = 0u32;
    let mut test = |idx: &[usize]| -> bool {
        if let Some(&r) = memo.get(idx) {
            return r;
        }
        tests += 1;
        let sub: Vec<T> = idx.iter().map(|&i| items[i].clone()).collect();
        let r = fails(&sub);
        memo.insert(idx.to_vec(), r);
        r
    };
    let mut current: Vec<usize> = (0..items.len()).collect();
    // Nothing at all may still fail (the failure does not need any item).
    if !current.is_empty() && test(&[]) {
        current.clear();
    }
    let mut n = 2usize;
    while current.len() >= 2 {
        let chunks = split(&current, n);
        if let Some(c) = chunks.iter().find(|c| test(c)) {
            current = c.clone();
            n = 2;
            continue;
        }
        // With two chunks each complement is the other chunk: tested above.
        let complement = (n > 2)
            .then(|| {
                (0..chunks.len())
                    .map(|skip| complement_of(&chunks, skip))
                    .find(|c| test(c))
            })
            .flatten();
        if let Some(c) = complement {
            current = c;
            n = (n - 1).max(2);
            continue;
        }
        if n >= current.len() {
            break;
        }
        n = (2 * n).min(current.len());
    }
    Minimal {
        items: current.iter().map(|&i| items[i].clone()).collect(),
        tests,
    }
}

/// `list` cut into `n` chunks as even as possible, the longer ones first.
fn split(list: &[usize], n: usize) -> Vec<Vec<usize>> {
    let (size, extra) = (list.len() / n, list.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let len = size + usize::from(i < extra);
        out.push(list[at..at + len].to_vec());
        at += len;
    }
    out
}

fn complement_of(chunks: &[Vec<usize>], skip: usize) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        if i != skip {
            out.extend(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_two_items_that_matter() {
        let items: Vec<u32> = (0..10).collect();
        let mut calls = Vec::new();
        let m = ddmin(&items, |s| {
            calls.push(s.to_vec());
            s.contains(&3) && s.contains(&7)
        });
        assert_eq!(m.items, vec![3, 7]);
        // The tests, worked out by hand (F = fails; memoised repeats not counted):
        //  1 []
        //  n=2 halves: 2 [0..5) 3 [5..10)
        //  n=4 chunks [0,1,2] [3,4,5] [6,7] [8,9]: 4-7; complements:
        //    8 [3..10) F → n=3: chunks [3,4,5] [6,7] [8,9] (memo);
        //    9 [6..10) 10 [3,4,5,8,9] 11 [3..8) F → n=2: [3,4,5] [6,7] memo
        //  n=4 chunks [3,4] [5] [6] [7]: 12-15; complements:
        //    16 [5,6,7] 17 [3,4,6,7] F → n=3: [3,4] [6] [7] memo;
        //    [6,7] memo, 18 [3,4,7] F → n=2: [3,4] [7] memo
        //  n=3 chunks [3] [4] [7]: 19 20; complements: 21 [4,7] 22 [3,7] F
        //  n=2: [3] [7] memo, n = len: stop.
        assert_eq!(m.tests, 22);
        assert_eq!(m.tests as usize, calls.len());
        // Every tested sub-list keeps the original order.
        assert!(calls.iter().all(|c| c.windows(2).all(|w| w[0] < w[1])));
    }

    #[test]
    fn an_item_needed_alone_is_found_by_halving() {
        let items: Vec<u32> = (0..16).collect();
        let m = ddmin(&items, |s| s.contains(&11));
        assert_eq!(m.items, vec![11]);
        // [] pass; halves: [0..8) pass, [8..16) FAIL; [8..12) FAIL;
        // [8,9] pass, [10,11] FAIL; [10] pass, [11] FAIL: 8 tests, and
        // the single item left ends the loop.
        assert_eq!(m.tests, 8);
    }

    #[test]
    fn a_failure_that_needs_nothing_shrinks_to_nothing() {
        let m = ddmin(&[1, 2, 3], |_| true);
        assert!(m.items.is_empty());
        // Only the empty list is tried.
        assert_eq!(m.tests, 1);
    }

    #[test]
    fn a_failure_that_needs_everything_keeps_everything() {
        let items = [1, 2, 3, 4];
        let m = ddmin(&items, |s| s.len() == 4);
        assert_eq!(m.items, items.to_vec());
        // [] ; n=2: [1,2] [3,4]; n=4: four singles and four complements of
        // three; n = len: stop. 1 + 2 + 4 + 4 = 11.
        assert_eq!(m.tests, 11);
    }

    #[test]
    fn split_keeps_order_and_sizes() {
        assert_eq!(
            split(&[0, 1, 2, 3, 4, 5, 6], 3),
            vec![vec![0, 1, 2], vec![3, 4], vec![5, 6]]
        );
    }
}
