//! Expanders: which of the groups that would help a scale-up takes it
//! (`--expander`). Each narrows the options to its best; the random
//! expander then picks one of those, as upstream's fallback does.

use std::collections::BTreeMap;

use super::cloud_api::GroupStatus;
use super::config::Expander;
use super::scale_up::ScaleUpOption;
use crate::api::object::Body;
use crate::api::Kind;
use crate::controllers::cache::Cache;
use crate::scheduler::resources::{CPU, MEMORY};
use crate::sim::RngStream;

/// The priority expander's ConfigMap (in the autoscaler's namespace).
pub const PRIORITY_CONFIG_MAP: &str = "cluster-autoscaler-priority-expander";
const NAMESPACE: &str = "kube-system";

/// Picks one option; `None` when there are none.
pub fn choose<'a>(
    expander: Expander,
    options: &'a [ScaleUpOption],
    groups: &[GroupStatus],
    cache: &Cache,
    rng: &mut RngStream,
) -> Option<&'a ScaleUpOption> {
    let best: Vec<&ScaleUpOption> = match expander {
        Expander::Random => options.iter().collect(),
        Expander::MostPods => best_by(options, |o| -(o.pods.len() as f64)),
        Expander::LeastWaste => best_by(options, |o| waste(o, &groups[o.group as usize])),
        Expander::Priority => {
            let prio = priorities(cache);
            let of = |o: &ScaleUpOption| priority_of(&prio, &groups[o.group as usize].name);
            match options.iter().filter_map(of).max() {
                Some(top) => options.iter().filter(|o| of(o) == Some(top)).collect(),
                // No priority matches any group: upstream falls back on all.
                None => options.iter().collect(),
            }
        }
    };
    match best.len() {
        0 => None,
        1 => Some(best[0]),
        n => Some(best[rng.range_inclusive(0, n as u64 - 1) as usize]),
    }
}

/// The options of lowest `key` (exact ties kept).
fn best_by(options: &[ScaleUpOption], key: impl Fn(&ScaleUpOption) -> f64) -> Vec<&ScaleUpOption> {
    let low = options.iter().map(&key).fold(f64::INFINITY, f64::min);
    options.iter().filter(|o| key(o) == low).collect()
}

/// least-waste's score: the idle share of CPU plus that of memory on the
/// new nodes, once the pods they take are on them.
pub fn waste(o: &ScaleUpOption, g: &GroupStatus) -> f64 {
    let n = f64::from(o.nodes);
    let share = |res: &str, used: i64| {
        let avail = g.shape.allocatable.get(res).copied().unwrap_or(0) as f64 * n;
        if avail <= 0.0 {
            0.0
        } else {
            (avail - used as f64) / avail
        }
    };
    let cpu: i64 = o.pods.iter().map(|p| p.info.requests.plain.cpu).sum();
    let mem: i64 = o.pods.iter().map(|p| p.info.requests.plain.memory).sum();
    share(CPU, cpu) + share(MEMORY, mem)
}

/// The ConfigMap's `priorities`: priority → patterns matching group names.
pub fn priorities(cache: &Cache) -> BTreeMap<i64, Vec<regex::Regex>> {
    let Some(cm) = cache.get(Kind::ConfigMap, NAMESPACE, PRIORITY_CONFIG_MAP) else {
        return BTreeMap::new();
    };
    let Body::Json(m) = &cm.body else {
        return BTreeMap::new();
    };
    let text = m
        .get("data")
        .and_then(|d| d.get("priorities"))
        .and_then(|p| p.as_str())
        .unwrap_or("");
    parse_priorities(text).unwrap_or_default()
}

/// Parses `priorities`: a YAML map of integers to lists of regular
/// expressions. A malformed value is refused whole, as upstream logs it and
/// keeps no priorities.
pub fn parse_priorities(text: &str) -> Result<BTreeMap<i64, Vec<regex::Regex>>, String> {
    let docs = crate::api::yaml::parse_documents(text).map_err(|e| e.message)?;
    let doc = docs.first().map(|d| d.to_json()).unwrap_or_default();
    let mut out = BTreeMap::new();
    let Some(map) = doc.as_object() else {
        return Err("priorities is not a map".into());
    };
    for (k, v) in map {
        let p: i64 = k
            .parse()
            .map_err(|_| format!("priority `{k}` is not an integer"))?;
        let list = v
            .as_array()
            .ok_or_else(|| format!("priority {p}: not a list"))?;
        let mut res = Vec::new();
        for r in list {
            let s = r
                .as_str()
                .ok_or_else(|| format!("priority {p}: not a string"))?;
            res.push(regex::Regex::new(s).map_err(|e| format!("priority {p}: {e}"))?);
        }
        out.insert(p, res);
    }
    Ok(out)
}

fn priority_of(prio: &BTreeMap<i64, Vec<regex::Regex>>, group: &str) -> Option<i64> {
    prio.iter()
        .rev()
        .find(|(_, res)| res.iter().any(|r| r.is_match(group)))
        .map(|(p, _)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_matching_priority_wins() {
        let p = parse_priorities("10:\n  - .*-spot.*\n50:\n  - ^gpu-.*\n").unwrap();
        assert_eq!(priority_of(&p, "gpu-a100"), Some(50));
        assert_eq!(priority_of(&p, "cpu-spot-1"), Some(10));
        assert_eq!(priority_of(&p, "cpu-on-demand"), None);
    }

    #[test]
    fn a_malformed_priority_list_is_refused() {
        assert!(parse_priorities("high:\n  - x\n").is_err());
        assert!(parse_priorities("10:\n  - '('\n").is_err());
    }
}
