//! The Job spec rules of `pkg/apis/batch/validation` a scenario can break
//! with the fields kubesim simulates: pod failure and success policies,
//! per-index back-off, and the completion mode they need.

use k8s_openapi::api::batch::v1 as batch;

use super::limits::MAX_INDEXED_PARALLELISM;

/// The first violated rule as (field path, upstream's message).
pub fn check(spec: &batch::JobSpec, prefix: &str) -> Result<(), (String, String)> {
    let at = |f: &str| format!("{prefix}{f}");
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    if indexed && spec.completions.is_none() {
        return Err((
            at("completions"),
            "Required value: when completion mode is Indexed".into(),
        ));
    }
    if let Some(p) = spec
        .parallelism
        .filter(|p| indexed && i64::from(*p) > MAX_INDEXED_PARALLELISM)
    {
        return Err((
            at("parallelism"),
            format!("Invalid value: {p}: must be less than or equal to {MAX_INDEXED_PARALLELISM} when completion mode is Indexed"),
        ));
    }
    if spec.max_failed_indexes.is_some() && spec.backoff_limit_per_index.is_none() {
        let msg = "Required value: when maxFailedIndexes is specified";
        return Err((at("backoffLimitPerIndex"), msg.into()));
    }
    if !indexed {
        for (f, v) in [
            ("backoffLimitPerIndex", spec.backoff_limit_per_index),
            ("maxFailedIndexes", spec.max_failed_indexes),
        ] {
            if let Some(v) = v {
                return Err((
                    at(f),
                    format!("Invalid value: {v}: requires indexed completion mode"),
                ));
            }
        }
        if spec.success_policy.is_some() {
            let msg = "Invalid value: requires indexed completion mode";
            return Err((at("successPolicy"), msg.into()));
        }
    }
    if let (Some(m), Some(c)) = (spec.max_failed_indexes, spec.completions) {
        if indexed && m > c {
            let msg = format!("Invalid value: {m}: must be less than or equal to completions");
            return Err((at("maxFailedIndexes"), msg));
        }
    }
    if let Some(p) = &spec.pod_failure_policy {
        pod_failure_policy(spec, p, &at("podFailurePolicy.rules"))?;
        let restart = spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref());
        if let Some(r) = restart.filter(|r| *r != "Never") {
            let msg = format!("Invalid value: \"{r}\": only \"Never\" is supported when podFailurePolicy is specified");
            return Err((at("template.spec.restartPolicy"), msg));
        }
    }
    if let Some(s) = &spec.success_policy {
        if s.rules.is_empty() {
            let msg = "Required value: at least one rules must be specified when the successPolicy is specified";
            return Err((at("successPolicy.rules"), msg.into()));
        }
        for (i, r) in s.rules.iter().enumerate() {
            if r.succeeded_count.is_none() && r.succeeded_indexes.is_none() {
                let msg = "Required value: at least one of succeededCount or succeededIndexes must be specified";
                return Err((at(&format!("successPolicy.rules[{i}]")), msg.into()));
            }
        }
    }
    Ok(())
}

fn pod_failure_policy(
    spec: &batch::JobSpec,
    p: &batch::PodFailurePolicy,
    rules: &str,
) -> Result<(), (String, String)> {
    for (i, r) in p.rules.iter().enumerate() {
        let at = format!("{rules}[{i}]");
        match r.action.as_str() {
            "FailJob" | "Ignore" | "Count" => {}
            "FailIndex" if spec.backoff_limit_per_index.is_some() => {}
            "FailIndex" => {
                let msg =
                    "Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set";
                return Err((format!("{at}.action"), msg.into()));
            }
            other => {
                let msg = format!("Unsupported value: \"{other}\": supported values: \"Count\", \"FailIndex\", \"FailJob\", \"Ignore\"");
                return Err((format!("{at}.action"), msg));
            }
        }
        let conditions = r.on_pod_conditions.as_ref().is_some_and(|c| !c.is_empty());
        match (&r.on_exit_codes, conditions) {
            (Some(_), true) => return Err((
                at,
                "Invalid value: specifying both OnExitCodes and OnPodConditions is not supported"
                    .into(),
            )),
            (None, false) => {
                return Err((
                    at,
                    "Invalid value: specifying one of OnExitCodes and OnPodConditions is required"
                        .into(),
                ))
            }
            _ => {}
        }
        if let Some(e) = &r.on_exit_codes {
            if e.operator != "In" && e.operator != "NotIn" {
                let msg = format!(
                    "Unsupported value: \"{}\": supported values: \"In\", \"NotIn\"",
                    e.operator
                );
                return Err((format!("{at}.onExitCodes.operator"), msg));
            }
            if e.values.is_empty() {
                return Err((
                    format!("{at}.onExitCodes.values"),
                    "Invalid value: at least one value is required".into(),
                ));
            }
            if e.operator == "In" && e.values.contains(&0) {
                return Err((
                    format!("{at}.onExitCodes.values"),
                    "Invalid value: 0: must not be 0 for the In operator".into(),
                ));
            }
        }
    }
    Ok(())
}
