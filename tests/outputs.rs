//! Outputs a user can trust: every controller Event reaches the apiserver
//! (none lost to a name collision), the summary's figures are what the
//! trace holds, a run directory is enough to rerun it, and `kubesim report`
//! refuses a trace it cannot read.

mod common;

use std::collections::BTreeMap;

use common::{run_full, Ran};
use kubesim::scenario::load_file;
use serde_json::Value;

fn ran(path: &str) -> Ran {
    let s = load_file(std::path::Path::new(path)).expect("example loads");
    run_full(&s, None)
}

/// The final `count` of every Event object, from its last `Write`.
fn event_counts(r: &Ran) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for w in r.writes("Event/") {
        let key = w["key"].as_str().unwrap().to_string();
        if w["verb"] == "delete" {
            out.remove(&key);
        } else {
            out.insert(key, w["object"]["count"].as_u64().expect("count"));
        }
    }
    out
}

#[test]
fn every_controller_event_is_stored_or_counted() {
    // deployment-failover: at 1.026 s the ReplicaSet controller records
    // two `SuccessfulCreate` Events about its ReplicaSet at one instant (two
    // pod creates answered together); before, both were named
    // `<rs>.<same nanos>` and the second create got 409: 12 recorded, 11
    // stored. rolling-update: 47 recorded, 45 stored before
    // (and repeats of one message were separate objects, not counted).
    for (path, recorded) in [
        ("scenarios/deployment-failover.yaml", 12),
        ("scenarios/rolling-update.yaml", 47),
    ] {
        let r = ran(path);
        let events: Vec<&Value> = r.events(Some("kube-controller-manager"), "Event").collect();
        assert_eq!(events.len(), recorded, "{path}");
        let counts = event_counts(&r);
        // Each recorded Event is an object of its own or one more on the
        // count of the identical Event before it (client-go's correlator).
        let stored: u64 = counts.values().sum();
        assert_eq!(stored, recorded as u64, "{path}: {counts:?}");
        let conflicts = r
            .events(Some("kube-apiserver"), "Request")
            .filter(|q| q["object"].as_str().unwrap().starts_with("Event") && q["code"] == 409)
            .count();
        assert_eq!(conflicts, 0, "{path}: an Event create collided");
    }
}
