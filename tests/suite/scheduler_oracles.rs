//! Upstream kube-scheduler's own test tables (extracted into
//! tests/data/oracles/scheduler_scoring.yaml), ported case by case: resource
//! scorers, balanced allocation, requested-to-capacity ratio, taint
//! toleration, default normalisation, image locality, feasible-node counts.

use std::collections::BTreeMap;

use kubesim::api::node::Taint;
use kubesim::api::quantity::Quantity;
use kubesim::api::yaml::parse_documents;
use kubesim::scheduler::framework::{
    default_normalize_score, default_resources, num_feasible_nodes_to_find,
    validate_resource_weights, ResourceWeight,
};
use kubesim::scheduler::plugins::image_locality::{self, ImageState};
use kubesim::scheduler::plugins::node_resources_fit::{self, broken_linear, ScoringStrategy};
use kubesim::scheduler::plugins::{balanced_allocation, taint_toleration};
use kubesim::scheduler::resources::{amount, Amounts, NodeResources, PodRequests};
use serde_json::Value;

fn oracles() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/oracles/scheduler_scoring.yaml"
    ))
    .unwrap();
    parse_documents(&text).unwrap().remove(0).to_json()
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn amounts(map: &Value) -> Amounts {
    map.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), amount(k, &Quantity::parse(&s(v)).unwrap())))
                .collect()
        })
        .unwrap_or_default()
}

/// A pod from `{containers: [...]}` or the name of a shared spec.
fn pod(v: &Value, specs: &Value) -> PodRequests {
    let v = match v {
        Value::String(name) => &specs[name],
        other => other,
    };
    let containers: Vec<Amounts> = v["containers"]
        .as_array()
        .map(|a| a.iter().map(amounts).collect())
        .unwrap_or_default();
    PodRequests::from_containers(&containers, &[], &Amounts::new())
}

fn resources(case: &Value) -> Vec<ResourceWeight> {
    match case.get("resources") {
        Some(Value::Array(rs)) => rs
            .iter()
            .map(|r| {
                ResourceWeight::new(r["name"].as_str().unwrap(), r["weight"].as_i64().unwrap())
            })
            .collect(),
        _ => default_resources(),
    }
}

/// Nodes with their existing pods accounted.
fn nodes(nodes: &Value, existing: &Value, specs: &Value) -> Vec<(String, NodeResources)> {
    let mut out: Vec<(String, NodeResources)> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                s(&n["name"]),
                NodeResources::new(amounts(&n["allocatable"])),
            )
        })
        .collect();
    for p in existing.as_array().into_iter().flatten() {
        let req = match p.get("spec") {
            Some(spec) => pod(spec, specs),
            None => pod(p, specs),
        };
        let on = s(&p["node"]);
        if let Some((_, n)) = out.iter_mut().find(|(name, _)| *name == on) {
            n.add_pod(&req);
        }
    }
    out
}

fn check_resource_cases(
    cases: &Value,
    strategy: &ScoringStrategy,
    specs: &Value,
    shared: Option<&Value>,
) -> usize {
    let mut n = 0;
    for case in cases.as_array().unwrap() {
        let id = s(&case["id"]);
        let node_list = case.get("nodes").or(shared.map(|s| &s["nodes"])).unwrap();
        let res = match shared.and_then(|s| s.get("resources")) {
            Some(_) => resources(shared.unwrap()),
            None => resources(case),
        };
        let p = pod(&case["pod"], specs);
        for (name, node) in nodes(node_list, &case["existing_pods"], specs) {
            let want = case["expected"][&name].as_i64().unwrap();
            let got = node_resources_fit::score(strategy, &res, &p, &node);
            assert_eq!(got, want, "{id} {name}");
            n += 1;
        }
    }
    n
}

#[test]
fn least_and_most_allocated_match_upstream() {
    let o = oracles();
    let n = check_resource_cases(
        &o["least_allocated_cases"],
        &ScoringStrategy::LeastAllocated,
        &Value::Null,
        None,
    );
    let m = check_resource_cases(
        &o["most_allocated_cases"],
        &ScoringStrategy::MostAllocated,
        &Value::Null,
        None,
    );
    assert!(n >= 16 && m >= 12, "{n} {m}");
}

#[test]
fn fit_args_reject_weights_outside_1_to_100() {
    let o = oracles();
    for case in o["fit_args_validation_cases"].as_array().unwrap() {
        let res = resources(case);
        let (i, _) = validate_resource_weights(&res).unwrap_err();
        assert_eq!(
            format!("scoringStrategy.resources[{i}].weight"),
            s(&case["error_field"])
        );
    }
    assert!(validate_resource_weights(&default_resources()).is_ok());
}

#[test]
fn balanced_allocation_matches_upstream() {
    let o = oracles();
    let ba = &o["balanced_allocation_cases"];
    let specs = &ba["pod_specs"];
    let mut n = 0;
    for case in ba["cases"].as_array().unwrap() {
        let id = s(&case["id"]);
        let p = pod(&case["pod"], specs);
        let res = resources(case);
        for (name, node) in nodes(&case["nodes"], &case["existing_pods"], specs) {
            let got = balanced_allocation::score(&res, &p, &node);
            match case.get("expected_prescore_status") {
                Some(v) if v == "Skip" => assert_eq!(got, None, "{id}"),
                _ => assert_eq!(got, case["expected"][&name].as_i64(), "{id} {name}"),
            }
            n += 1;
        }
    }
    assert!(n >= 8);
}

#[test]
fn requested_to_capacity_ratio_matches_upstream() {
    let o = oracles();
    let r = &o["requested_to_capacity_ratio_cases"];
    for f in r["broken_linear_function"].as_array().unwrap() {
        let shape: Vec<(i64, i64)> = f["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["u"].as_i64().unwrap(), p["s"].as_i64().unwrap()))
            .collect();
        for (p, want) in f["assertions"].as_object().unwrap() {
            let p: i64 = p.parse().unwrap();
            assert_eq!(
                broken_linear(&shape, p),
                want.as_i64().unwrap(),
                "{shape:?} at {p}"
            );
        }
    }
    let mut n = 0;
    for group in ["cpu_memory", "single_extended", "multiple_extended"] {
        let g = &r[group];
        let shape: Vec<(i64, i64)> = g["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["utilization"].as_i64().unwrap(),
                    p["score"].as_i64().unwrap(),
                )
            })
            .collect();
        let strategy = ScoringStrategy::RequestedToCapacityRatio { shape };
        n += check_resource_cases(&g["cases"], &strategy, &Value::Null, Some(g));
    }
    assert!(n >= 10, "{n}");
}

fn taints(v: &Value) -> Vec<Taint> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| Taint {
            key: s(&t["key"]),
            value: t.get("value").map(s).unwrap_or_default(),
            effect: s(&t["effect"]),
            time_added: None,
        })
        .collect()
}

fn tolerations(v: &Value) -> Vec<taint_toleration::Toleration> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| taint_toleration::Toleration {
            key: t.get("key").map(s).unwrap_or_default(),
            operator: t.get("operator").map(s).unwrap_or_default(),
            value: t.get("value").map(s).unwrap_or_default(),
            effect: t.get("effect").map(s).unwrap_or_default(),
        })
        .collect()
}

#[test]
fn taint_toleration_scores_and_filters_like_upstream() {
    let o = oracles();
    let tt = &o["taint_toleration"];
    for case in tt["cases"].as_array().unwrap() {
        let tols = tolerations(&case["pod_tolerations"]);
        let nodes = case["nodes"].as_array().unwrap();
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| taint_toleration::raw_score(&tols, &taints(&n["taints"])))
            .collect();
        taint_toleration::normalize(&mut scores);
        for (n, got) in nodes.iter().zip(scores) {
            let want = case["expected"][s(&n["name"])].as_i64().unwrap();
            assert_eq!(got, want, "{} {}", s(&case["id"]), s(&n["name"]));
        }
    }
    for case in tt["filter_cases"].as_array().unwrap() {
        let verdict = taint_toleration::filter(
            &tolerations(&case["pod_tolerations"]),
            &taints(&case["node_taints"]),
        );
        assert_eq!(verdict.is_none(), case["fits"].as_bool().unwrap(), "{case}");
        if let Some(reason) = verdict {
            assert!(
                reason.starts_with("node(s) had untolerated taint {dedicated: "),
                "{reason}"
            );
        }
    }
}

#[test]
fn default_normalize_score_matches_the_framework() {
    let o = oracles();
    for case in o["default_normalize_score"]["cases"].as_array().unwrap() {
        let mut raw: Vec<i64> = case["raw"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        default_normalize_score(100, case["reverse"].as_bool().unwrap(), &mut raw);
        let want: Vec<i64> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(raw, want);
    }
}

#[test]
fn feasible_node_counts_match_upstream() {
    let o = oracles();
    for case in o["num_feasible_nodes"]["cases"].as_array().unwrap() {
        let all = case["numAllNodes"].as_u64().unwrap() as usize;
        let pct = case["percentageOfNodesToScore"].as_u64().unwrap() as usize;
        assert_eq!(
            num_feasible_nodes_to_find(all, pct),
            case["want"].as_u64().unwrap() as usize
        );
    }
}

#[test]
fn image_locality_matches_upstream() {
    let o = oracles();
    let il = &o["image_locality"];
    let mib = 1024 * 1024i64;
    let layouts = il["node_images_MiB"].as_object().unwrap();
    for case in il["cases"].as_array().unwrap() {
        let images: Vec<String> = case["pod"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(s)
            .collect();
        let node_layouts: BTreeMap<String, String> = case["nodes"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), s(v)))
            .collect();
        // How many of the case's nodes hold each image.
        let mut spread: BTreeMap<String, i64> = BTreeMap::new();
        for layout in node_layouts.values() {
            for name in layouts[layout].as_object().unwrap().keys() {
                *spread
                    .entry(image_locality::normalized_image_name(name))
                    .or_default() += 1;
            }
        }
        let total = node_layouts.len() as i64;
        for (node, layout) in &node_layouts {
            let held: BTreeMap<String, ImageState> = layouts[layout]
                .as_object()
                .unwrap()
                .iter()
                .map(|(name, size)| {
                    let n = image_locality::normalized_image_name(name);
                    let st = ImageState {
                        size: size.as_i64().unwrap() * mib,
                        num_nodes: spread[&n],
                    };
                    (n, st)
                })
                .collect();
            let got = image_locality::score(&images, images.len(), &held, total);
            assert_eq!(
                got,
                case["expected"][node].as_i64().unwrap(),
                "{} {node}",
                s(&case["id"])
            );
        }
    }
}

/// Builds a PodSpec with the oracle's preferred node affinity terms.
fn preferred_affinity(terms: &Value) -> k8s_openapi::api::core::v1::PodSpec {
    use k8s_openapi::api::core::v1 as core;
    let prefs: Vec<core::PreferredSchedulingTerm> = terms
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| core::PreferredSchedulingTerm {
            weight: t["weight"].as_i64().unwrap() as i32,
            preference: core::NodeSelectorTerm {
                match_expressions: Some(
                    t["match"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| core::NodeSelectorRequirement {
                            key: s(&m["key"]),
                            operator: s(&m["op"]),
                            values: Some(m["values"].as_array().unwrap().iter().map(s).collect()),
                        })
                        .collect(),
                ),
                match_fields: None,
            },
        })
        .collect();
    core::PodSpec {
        affinity: Some(core::Affinity {
            node_affinity: Some(core::NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(prefs),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn node_affinity_preferences_score_like_upstream() {
    use kubesim::scheduler::plugins::node_affinity;
    let o = oracles();
    let na = &o["node_affinity"];
    for case in na["cases"].as_array().unwrap() {
        let id = s(&case["id"]);
        // `addedAffinity` from the plugin args adds its terms to the pod's.
        let mut terms: Vec<Value> = Vec::new();
        for key in ["pod_affinity", "added_affinity"] {
            if let Some(name) = case.get(key).map(s) {
                if name != "none" {
                    terms.extend(na["affinities"][&name].as_array().unwrap().iter().cloned());
                }
            }
        }
        let spec = preferred_affinity(&Value::Array(terms));
        let nodes: Vec<(String, BTreeMap<String, String>)> = case["nodes"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, l)| {
                let labels = na["labels"][s(l)]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), s(v)))
                    .collect();
                (n.clone(), labels)
            })
            .collect();
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|(n, l)| node_affinity::raw_score(&spec, l, n))
            .collect();
        node_affinity::normalize(&mut scores);
        for ((n, _), got) in nodes.iter().zip(scores) {
            assert_eq!(got, case["expected"][n].as_i64().unwrap(), "{id} {n}");
        }
    }
}

/// Labels `{name: ""}` from a list of names (the oracle's pods carry bare keys).
fn bare_labels(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|l| (s(l), String::new()))
        .collect()
}

fn placed(
    name: String,
    namespace: &str,
    labels: BTreeMap<String, String>,
    terminating: bool,
) -> std::sync::Arc<kubesim::scheduler::pod_info::PodInfo> {
    std::sync::Arc::new(kubesim::scheduler::pod_info::PodInfo {
        name,
        namespace: namespace.to_string(),
        labels: std::sync::Arc::new(labels),
        terminating,
        ..Default::default()
    })
}

#[test]
fn pod_topology_spread_scores_like_upstream() {
    use kubesim::api::selector::{Requirement, Selector};
    use kubesim::scheduler::plugins::pod_topology_spread::{self as pts, SpreadConstraint};
    use kubesim::scheduler::profile::NodeSnapshot;
    let o = oracles();
    let cases = o["pod_topology_spread"]["cases"].as_array().unwrap();
    assert!(cases.len() >= 9);
    for case in cases {
        let id = s(&case["id"]);
        let pod_labels = bare_labels(&case["pod"]["labels"]);
        let constraints: Vec<SpreadConstraint> = case["pod"]["constraints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let selector = match &c["selector"] {
                    Value::Null => None,
                    v => Some(Selector {
                        requirements: vec![Requirement::Exists(s(v))],
                    }),
                };
                let mut sc = SpreadConstraint::default_with(
                    c["key"].as_str().unwrap(),
                    c["maxSkew"].as_i64().unwrap() as i32,
                    Selector::default(),
                );
                sc.selector = selector;
                sc
            })
            .collect();
        let mut all: Vec<NodeSnapshot> = Vec::new();
        let mut feasible = Vec::new();
        for (list, candidate) in [(&case["nodes"], true), (&case["failed_nodes"], false)] {
            for n in list.as_array().unwrap() {
                let labels: BTreeMap<String, String> = n["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), s(v)))
                    .collect();
                if candidate {
                    feasible.push(all.len());
                }
                all.push(NodeSnapshot::new(&s(&n["name"]), labels, Amounts::new()));
            }
        }
        if let Some(existing) = case["existing_pods"].as_object() {
            for (node, pods) in existing {
                let i = all.iter().position(|n| n.name == *node).unwrap();
                for (k, p) in pods.as_array().unwrap().iter().enumerate() {
                    let (labels, ns, terminating) = match p {
                        Value::Array(_) => (bare_labels(p), "default".to_string(), false),
                        obj => (
                            bare_labels(&obj["labels"]),
                            obj.get("namespace")
                                .map(s)
                                .unwrap_or_else(|| "default".into()),
                            obj.get("terminating")
                                .and_then(Value::as_bool)
                                .unwrap_or(false),
                        ),
                    };
                    all[i].add_pod(placed(format!("{node}-{k}"), &ns, labels, terminating));
                }
            }
        }
        let incoming = kubesim::scheduler::pod_info::PodInfo {
            namespace: "default".into(),
            labels: std::sync::Arc::new(pod_labels),
            ..Default::default()
        };
        let spec = k8s_openapi::api::core::v1::PodSpec::default();
        let (raw, ignored) = pts::score(&incoming, &spec, &constraints, true, &all, &feasible);
        let mut norm = raw.clone();
        pts::normalize(&mut norm, &ignored);
        for (k, &i) in feasible.iter().enumerate() {
            let want = case["expected"][&all[i].name].as_i64().unwrap();
            assert_eq!(norm[k], want, "{id} {}: raw {raw:?}", all[i].name);
        }
    }
}

#[test]
fn inter_pod_affinity_scores_like_upstream() {
    use kubesim::api::selector::{Requirement, Selector};
    use kubesim::scheduler::plugins::inter_pod_affinity as ipa;
    use kubesim::scheduler::plugins::pod_affinity_term::AffinityTerm;
    use kubesim::scheduler::pod_info::PodInfo;
    use kubesim::scheduler::profile::NodeSnapshot;
    let o = oracles();
    let sec = &o["inter_pod_affinity"];
    let label_set = |table: &str, name: &Value| -> BTreeMap<String, String> {
        sec[table][s(name)]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
            .unwrap_or_default()
    };
    // "security In [S1]"
    let selector = |text: &str| -> Selector {
        let (key, rest) = text.split_once(" In ").unwrap();
        let values = rest
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|v| v.trim().to_string())
            .collect();
        Selector {
            requirements: vec![Requirement::In(key.to_string(), values)],
        }
    };
    for case in sec["cases"].as_array().unwrap() {
        let id = s(&case["id"]);
        let terms: Vec<AffinityTerm> = case["incoming"]["preferred_affinity"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| AffinityTerm {
                namespaces: vec!["default".into()],
                namespace_selector: None,
                selector: Some(selector(t["selector"].as_str().unwrap())),
                topology_key: s(&t["topologyKey"]),
                weight: t["weight"].as_i64().unwrap() as i32,
            })
            .collect();
        let mut incoming = PodInfo {
            namespace: "default".into(),
            labels: std::sync::Arc::new(label_set("pod_labels", &case["incoming"]["labels"])),
            ..Default::default()
        };
        incoming.affinity.preferred_affinity = terms;
        let mut nodes: Vec<NodeSnapshot> = case["nodes"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, set)| {
                NodeSnapshot::new(name, label_set("node_labels", set), Amounts::new())
            })
            .collect();
        for (node, pods) in case["existing_pods"].as_object().unwrap() {
            let i = nodes.iter().position(|n| n.name == *node).unwrap();
            for (k, p) in pods.as_array().unwrap().iter().enumerate() {
                let labels = label_set("pod_labels", p);
                nodes[i].add_pod(placed(format!("{node}-{k}"), "default", labels, false));
            }
        }
        let feasible: Vec<usize> = (0..nodes.len()).collect();
        let (raw, any) = ipa::score(&incoming, &nodes, &feasible, 1, false);
        let mut norm = raw.clone();
        ipa::normalize(&mut norm, any);
        for (k, n) in nodes.iter().enumerate() {
            let want = case["expected"][&n.name].as_i64().unwrap();
            assert_eq!(norm[k], want, "{id} {}: raw {raw:?}", n.name);
        }
    }
}
