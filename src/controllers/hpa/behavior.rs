//! `spec.behavior` (`normalizeDesiredReplicasWithBehaviors`): stabilisation
//! windows over past recommendations (scale up to the lowest of the window,
//! down to the highest; 0 s up and 300 s down by default), then the scaling
//! policies' rate limits measured from the replica count at the start of
//! each policy's period (by default up by 4 pods or 100 % per 15 s,
//! whichever is more; down by 100 % per 15 s), then min and max.

use serde_json::Value as Json;

use crate::sim::{SimDuration, SimTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Pods,
    Percent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub value: i64,
    pub period: SimDuration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    Max,
    Min,
    Disabled,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub window: SimDuration,
    pub select: Select,
    pub policies: Vec<Policy>,
}

/// A change made, for the policies' periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleEvent {
    pub change: i64,
    pub at: SimTime,
}

impl Rules {
    pub fn default_up() -> Rules {
        Rules {
            window: SimDuration::ZERO,
            select: Select::Max,
            policies: vec![
                Policy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period: SimDuration::from_secs(15),
                },
                Policy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period: SimDuration::from_secs(15),
                },
            ],
        }
    }

    pub fn default_down() -> Rules {
        Rules {
            window: SimDuration::from_secs(300),
            select: Select::Max,
            policies: vec![Policy {
                kind: PolicyKind::Percent,
                value: 100,
                period: SimDuration::from_secs(15),
            }],
        }
    }

    /// `spec.behavior.scaleUp` / `scaleDown` over `default`.
    pub fn from_json(v: Option<&Json>, default: Rules) -> Result<Rules, String> {
        let Some(v) = v else { return Ok(default) };
        let mut r = default;
        if let Some(w) = v.get("stabilizationWindowSeconds").and_then(Json::as_i64) {
            if !(0..=3600).contains(&w) {
                return Err(format!("stabilizationWindowSeconds: {w} is outside 0-3600"));
            }
            r.window = SimDuration::from_secs(w as u64);
        }
        if let Some(s) = v.get("selectPolicy").and_then(Json::as_str) {
            r.select = match s {
                "Max" => Select::Max,
                "Min" => Select::Min,
                "Disabled" => Select::Disabled,
                other => {
                    return Err(format!(
                        "selectPolicy: unsupported value {other:?}: Max, Min or Disabled"
                    ))
                }
            };
        }
        if let Some(ps) = v.get("policies").and_then(Json::as_array) {
            r.policies = ps
                .iter()
                .map(|p| {
                    let kind = match p.get("type").and_then(Json::as_str) {
                        Some("Pods") => PolicyKind::Pods,
                        Some("Percent") => PolicyKind::Percent,
                        other => {
                            return Err(format!(
                                "policies[].type: unsupported value {other:?}: Pods or Percent"
                            ))
                        }
                    };
                    let value = p
                        .get("value")
                        .and_then(Json::as_i64)
                        .filter(|v| *v > 0)
                        .ok_or("policies[].value must be positive")?;
                    let period = p
                        .get("periodSeconds")
                        .and_then(Json::as_i64)
                        .filter(|v| (1..=1800).contains(v))
                        .ok_or("policies[].periodSeconds must be 1-1800")?;
                    Ok(Policy {
                        kind,
                        value,
                        period: SimDuration::from_secs(period as u64),
                    })
                })
                .collect::<Result<_, String>>()?;
        }
        Ok(r)
    }
}

fn change_in_period(events: &[ScaleEvent], period: SimDuration, now: SimTime) -> i64 {
    events
        .iter()
        .filter(|e| e.at.after(period) > now)
        .map(|e| e.change)
        .sum()
}

/// `calculateScaleUpLimitWithScalingRules`.
pub fn scale_up_limit(
    current: i64,
    ups: &[ScaleEvent],
    downs: &[ScaleEvent],
    rules: &Rules,
    now: SimTime,
) -> i64 {
    if rules.select == Select::Disabled {
        return current;
    }
    let mut result: Option<i64> = None;
    for p in &rules.policies {
        let start =
            current - change_in_period(ups, p.period, now) + change_in_period(downs, p.period, now);
        let proposed = match p.kind {
            PolicyKind::Pods => start + p.value,
            PolicyKind::Percent => (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i64,
        };
        result = Some(match (result, rules.select) {
            (None, _) => proposed,
            (Some(r), Select::Min) => r.min(proposed),
            (Some(r), _) => r.max(proposed),
        });
    }
    result.unwrap_or(current)
}

/// `calculateScaleDownLimitWithBehaviors`.
pub fn scale_down_limit(
    current: i64,
    ups: &[ScaleEvent],
    downs: &[ScaleEvent],
    rules: &Rules,
    now: SimTime,
) -> i64 {
    if rules.select == Select::Disabled {
        return current;
    }
    let mut result: Option<i64> = None;
    for p in &rules.policies {
        let start =
            current - change_in_period(ups, p.period, now) + change_in_period(downs, p.period, now);
        let proposed = match p.kind {
            PolicyKind::Pods => start - p.value,
            PolicyKind::Percent => (start as f64 * (1.0 - p.value as f64 / 100.0)) as i64,
        };
        result = Some(match (result, rules.select) {
            (None, _) => proposed,
            (Some(r), Select::Min) => r.max(proposed),
            (Some(r), _) => r.min(proposed),
        });
    }
    result.unwrap_or(current)
}

/// One HPA's memory between syncs.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Unstabilised recommendations and when they were made.
    pub recommendations: Vec<(i64, SimTime)>,
    pub ups: Vec<ScaleEvent>,
    pub downs: Vec<ScaleEvent>,
}

/// What normalisation decided and why (for the ScalingLimited condition).
#[derive(Clone, Debug, PartialEq)]
pub struct Normalized {
    pub replicas: i64,
    pub limited: Option<(&'static str, &'static str)>,
}

/// `normalizeDesiredReplicasWithBehaviors`.
#[allow(clippy::too_many_arguments)]
pub fn normalize(
    h: &mut History,
    up: &Rules,
    down: &Rules,
    min: i64,
    max: i64,
    current: i64,
    desired: i64,
    now: SimTime,
) -> Normalized {
    // Stabilise over the windows.
    let mut up_rec = desired;
    let mut down_rec = desired;
    for (r, at) in &h.recommendations {
        if at.after(up.window) > now {
            up_rec = up_rec.min(*r);
        }
        if at.after(down.window) > now {
            down_rec = down_rec.max(*r);
        }
    }
    let longest = up.window.max(down.window);
    h.recommendations.retain(|(_, at)| at.after(longest) > now);
    h.recommendations.push((desired, now));
    let mut stabilized = current;
    if stabilized < up_rec {
        stabilized = up_rec;
    }
    if stabilized > down_rec {
        stabilized = down_rec;
    }
    // Rate limits.
    let mut limited = None;
    let mut out = stabilized;
    if stabilized > current {
        let limit = scale_up_limit(current, &h.ups, &h.downs, up, now).max(current);
        let allowed = if max > limit {
            limited = Some((
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            ));
            limit
        } else {
            limited = Some((
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            ));
            max
        };
        if stabilized > allowed {
            out = allowed;
        } else {
            limited = None;
        }
    } else if stabilized < current {
        let limit = scale_down_limit(current, &h.ups, &h.downs, down, now).min(current);
        let allowed = if min < limit {
            limited = Some((
                "ScaleDownLimit",
                "the desired replica count is decreasing faster than the maximum scale rate",
            ));
            limit
        } else {
            limited = Some((
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            ));
            min
        };
        if stabilized < allowed {
            out = allowed;
        } else {
            limited = None;
        }
    }
    Normalized {
        replicas: out.clamp(min, max.max(min)),
        limited,
    }
}

/// Records a rescale for the policies' periods, forgetting events older
/// than the longest period.
pub fn record(h: &mut History, from: i64, to: i64, up: &Rules, down: &Rules, now: SimTime) {
    let longest = |r: &Rules| {
        r.policies
            .iter()
            .map(|p| p.period)
            .max()
            .unwrap_or(SimDuration::ZERO)
    };
    h.ups.retain(|e| e.at.after(longest(up)) > now);
    h.downs.retain(|e| e.at.after(longest(down)) > now);
    if to > from {
        h.ups.push(ScaleEvent {
            change: to - from,
            at: now,
        });
    } else if to < from {
        h.downs.push(ScaleEvent {
            change: from - to,
            at: now,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_secs(s))
    }

    #[test]
    fn default_scale_up_is_four_pods_or_double_whichever_is_more() {
        let up = Rules::default_up();
        assert_eq!(scale_up_limit(1, &[], &[], &up, t(0)), 5);
        assert_eq!(scale_up_limit(10, &[], &[], &up, t(0)), 20);
        // Already up by 6 in this period: measured from 4.
        let ups = [ScaleEvent {
            change: 6,
            at: t(10),
        }];
        assert_eq!(scale_up_limit(10, &ups, &[], &up, t(20)), 8);
        assert_eq!(scale_up_limit(10, &ups, &[], &up, t(26)), 20);
    }

    #[test]
    fn scale_down_waits_out_the_stabilization_window() {
        let (up, down) = (Rules::default_up(), Rules::default_down());
        let mut h = History::default();
        // Load drops at 0: the recommendation is 2, but 10 was recommended
        // within the last 300 s.
        assert_eq!(
            normalize(&mut h, &up, &down, 1, 20, 10, 10, t(0)).replicas,
            10
        );
        assert_eq!(
            normalize(&mut h, &up, &down, 1, 20, 10, 2, t(15)).replicas,
            10
        );
        assert_eq!(
            normalize(&mut h, &up, &down, 1, 20, 10, 2, t(299)).replicas,
            10
        );
        assert_eq!(
            normalize(&mut h, &up, &down, 1, 20, 10, 2, t(301)).replicas,
            2
        );
    }

    #[test]
    fn scale_up_is_rate_limited_and_capped() {
        let (up, down) = (Rules::default_up(), Rules::default_down());
        let mut h = History::default();
        let n = normalize(&mut h, &up, &down, 1, 100, 2, 50, t(0));
        assert_eq!(n.replicas, 6);
        assert_eq!(n.limited.unwrap().0, "ScaleUpLimit");
        let n = normalize(&mut h, &up, &down, 1, 5, 2, 50, t(0));
        assert_eq!(n.replicas, 5);
        assert_eq!(n.limited.unwrap().0, "TooManyReplicas");
    }
}
