//! `spec.podFailurePolicy` (`pod_failure_policy.go`): the first rule that a
//! failed pod matches, by a container's non-zero exit code or by a pod
//! condition, decides whether the failure fails the Job at once
//! (`FailJob`), fails only its index (`FailIndex`), is not counted against
//! `backoffLimit` (`Ignore`) or is counted as usual (`Count`).

use k8s_openapi::api::batch::v1 as batch;

use crate::api::pod::{ContainerState, ContainerStatus, PodStatus};
use crate::api::Object;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    FailJob,
    FailIndex,
    Ignore,
    Count,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "FailJob" => Action::FailJob,
            "FailIndex" => Action::FailIndex,
            "Ignore" => Action::Ignore,
            "Count" => Action::Count,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::FailJob => "FailJob",
            Action::FailIndex => "FailIndex",
            Action::Ignore => "Ignore",
            Action::Count => "Count",
        }
    }
}

/// `onExitCodes`: a container (any, when unnamed) that terminated with a
/// non-zero code `In` (or `NotIn`) the values.
#[derive(Clone, Debug)]
struct OnExitCodes {
    container: Option<String>,
    not_in: bool,
    values: Vec<i32>,
}

#[derive(Clone, Debug)]
enum Requirement {
    ExitCodes(OnExitCodes),
    /// `onPodConditions`: (type, status) patterns, any of which matches.
    Conditions(Vec<(String, String)>),
}

#[derive(Clone, Debug)]
struct Rule {
    /// `None` for an action this version does not know: the rule never fires.
    action: Option<Action>,
    requirement: Requirement,
}

#[derive(Clone, Debug)]
pub struct PodFailurePolicy {
    rules: Vec<Rule>,
}

/// What matching a failed pod says (`matchPodFailurePolicy`'s three results).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Set when a `FailJob` rule matched: the Job's failure message.
    pub fail_job: Option<String>,
    /// Whether the failure counts against `backoffLimit`.
    pub counts: bool,
    pub action: Option<Action>,
}

impl PodFailurePolicy {
    pub fn from_api(p: &batch::PodFailurePolicy) -> PodFailurePolicy {
        let rules = p
            .rules
            .iter()
            .map(|r| Rule {
                action: Action::parse(&r.action),
                requirement: match &r.on_exit_codes {
                    Some(e) => Requirement::ExitCodes(OnExitCodes {
                        container: e.container_name.clone(),
                        not_in: e.operator == "NotIn",
                        values: e.values.clone(),
                    }),
                    None => Requirement::Conditions(
                        r.on_pod_conditions
                            .iter()
                            .flatten()
                            .map(|c| (c.type_.clone(), c.status.clone()))
                            .collect(),
                    ),
                },
            })
            .collect();
        PodFailurePolicy { rules }
    }

    /// Matches a failed `pod` against the rules in order.
    pub fn check(&self, pod: &Object) -> Verdict {
        let counted = Verdict {
            fail_job: None,
            counts: true,
            action: None,
        };
        let Some(status) = pod.as_pod().map(|b| &b.status) else {
            return counted;
        };
        for (index, rule) in self.rules.iter().enumerate() {
            let matched = match &rule.requirement {
                Requirement::ExitCodes(e) => matching_container(status, e).map(|(name, code)| {
                    format!(
                        "Container {name} for pod {}/{} failed with exit code {code} matching FailJob rule at index {index}",
                        pod.meta.namespace, pod.meta.name
                    )
                }),
                Requirement::Conditions(patterns) => {
                    matching_condition(status, patterns).map(|type_| {
                        format!(
                            "Pod {}/{} has condition {type_} matching FailJob rule at index {index}",
                            pod.meta.namespace, pod.meta.name
                        )
                    })
                }
            };
            let (Some(message), Some(action)) = (matched, rule.action) else {
                continue;
            };
            return Verdict {
                fail_job: (action == Action::FailJob).then_some(message),
                counts: action != Action::Ignore,
                action: Some(action),
            };
        }
        counted
    }
}

/// The first terminated container (regular, then init) with a non-zero
/// exit code the requirement matches: its name and code.
fn matching_container(status: &PodStatus, e: &OnExitCodes) -> Option<(String, i32)> {
    let matches = |c: &ContainerStatus| -> Option<(String, i32)> {
        let ContainerState::Terminated { exit_code, .. } = c.state else {
            return None;
        };
        let named = e.container.as_ref().is_none_or(|n| *n == c.name);
        let listed = e.values.contains(&exit_code);
        (named && exit_code != 0 && listed != e.not_in).then(|| (c.name.clone(), exit_code))
    };
    status
        .container_statuses
        .iter()
        .find_map(matches)
        .or_else(|| status.init_container_statuses.iter().find_map(matches))
}

/// The type of the first pod condition one of the patterns matches.
fn matching_condition(status: &PodStatus, patterns: &[(String, String)]) -> Option<&'static str> {
    status.conditions.iter().find_map(|c| {
        let s = if c.status { "True" } else { "False" };
        patterns
            .iter()
            .any(|(t, want)| t == c.type_ && want == s)
            .then_some(c.type_)
    })
}
