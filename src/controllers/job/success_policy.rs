//! `spec.successPolicy` (`success_policy.go`, Indexed Jobs only): the Job
//! succeeds once any rule is met, by enough of a listed set of indexes
//! (`succeededIndexes`, with `succeededCount` of them when given) or by a
//! number of succeeded indexes (`succeededCount` alone). The Job then gets
//! `SuccessCriteriaMet` with reason `SuccessPolicy`, its remaining pods are
//! terminated, and `Complete` follows once none is left.

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1 as batch;

use super::indexes;

/// `JobReasonSuccessPolicy`.
pub const REASON: &str = "SuccessPolicy";

#[derive(Clone, Debug)]
struct Rule {
    succeeded_indexes: Option<String>,
    succeeded_count: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct SuccessPolicy {
    rules: Vec<Rule>,
}

impl SuccessPolicy {
    pub fn from_api(p: &batch::SuccessPolicy) -> SuccessPolicy {
        SuccessPolicy {
            rules: p
                .rules
                .iter()
                .map(|r| Rule {
                    succeeded_indexes: r.succeeded_indexes.clone(),
                    succeeded_count: r.succeeded_count.map(i64::from),
                })
                .collect(),
        }
    }

    /// `matchSuccessPolicy`: the condition's message when a rule is met.
    pub fn met(&self, completions: i64, succeeded: &BTreeSet<i64>) -> Option<String> {
        if succeeded.is_empty() {
            return None;
        }
        for (index, rule) in self.rules.iter().enumerate() {
            let met = match &rule.succeeded_indexes {
                Some(s) => {
                    let required = indexes::parse(s, completions);
                    if required.is_empty() {
                        // Unreadable: upstream skips the rule.
                        continue;
                    }
                    let contains = required.intersection(succeeded).count() as i64;
                    contains == required.len() as i64
                        || rule.succeeded_count.is_some_and(|c| contains >= c)
                }
                None => rule
                    .succeeded_count
                    .is_some_and(|c| succeeded.len() as i64 >= c),
            };
            if met {
                return Some(format!("Matched rules at index {index}"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &[(Option<&str>, Option<i64>)]) -> SuccessPolicy {
        SuccessPolicy {
            rules: rules
                .iter()
                .map(|(i, c)| Rule {
                    succeeded_indexes: i.map(str::to_string),
                    succeeded_count: *c,
                })
                .collect(),
        }
    }

    #[test]
    fn rules_match_by_indexes_count_or_both() {
        let done: BTreeSet<i64> = [0, 2, 3].into();
        // Index 1 is missing from "0-3": not every listed index succeeded.
        assert_eq!(policy(&[(Some("0-3"), None)]).met(5, &done), None);
        // Two of "1-3" suffice; 2 and 3 are done. Rule 1 is the one met.
        let p = policy(&[(Some("4"), None), (Some("1-3"), Some(2))]);
        assert_eq!(p.met(5, &done).as_deref(), Some("Matched rules at index 1"));
        // Three succeeded indexes of any.
        assert!(policy(&[(None, Some(3))]).met(5, &done).is_some());
        assert!(policy(&[(None, Some(4))]).met(5, &done).is_none());
        assert!(policy(&[(None, Some(1))])
            .met(5, &BTreeSet::new())
            .is_none());
    }
}
