//! The cluster autoscaler against upstream's defaults (release 1.34): a
//! scan every 10 s, scale-up within one loop of pods turning
//! unschedulable, scale-down of a node unneeded for 10 minutes, deletion 5 s
//! after the taint, instances not Ready within 15 minutes deleted and their
//! group backed off 5 minutes, then 10; drains through the eviction API
//! that a PodDisruptionBudget can hold; and, after a node crash, a
//! replacement scaled up and the unready node removed after 20 minutes.

use crate::common;

use common::{run_at, scenario, secs, Ran};
use kubesim::sim::TraceLevel;

const CA: &str = "cluster-autoscaler";
const CLOUD: &str = "cloud-provider";

fn deployment(replicas: u32, cpu: &str) -> String {
    format!(
        r#"
objects:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: web, namespace: default}}
    spec:
      replicas: {replicas}
      selector:
        matchLabels: {{app: web}}
      template:
        metadata:
          labels: {{app: web}}
        spec:
          containers:
            - name: web
              image: nginx:1.27
              resources:
                requests: {{cpu: "{cpu}", memory: 1Gi}}
"#
    )
}

fn pool(name: &str, cpu: u32, count: u32, min: u32, max: u32, delay: &str) -> String {
    format!(
        "    - name: {name}\n      count: {count}\n      capacity: {{cpu: \"{cpu}\", memory: 16Gi}}\n      pricePerHour: 0.2\n      autoscaling: {{minSize: {min}, maxSize: {max}, provisioningDelay: {{constant: {delay}}}}}\n"
    )
}

fn run(yaml: &str) -> Ran {
    run_at(&scenario(yaml), None, TraceLevel::Events)
}

/// Times of `event` records of `component` (and of `node`, when given).
fn times(ran: &Ran, component: &str, event: &str, node: Option<&str>) -> Vec<f64> {
    ran.events(Some(component), event)
        .filter(|r| node.is_none_or(|n| r["node"] == n))
        .map(secs)
        .collect()
}

#[test]
fn scale_up_and_scale_down_follow_the_upstream_timings() {
    let yaml = format!(
        "name: ca\nseed: 3\nduration: 30m\ncluster:\n  nodePools:\n    - name: base\n      capacity: {{cpu: \"4\", memory: 16Gi}}\n{}{}timeline:\n  - at: 1m\n    scale: {{kind: Deployment, name: web, replicas: 10}}\n  - at: 15m\n    scale: {{kind: Deployment, name: web, replicas: 2}}\n",
        pool("burst", 4, 0, 0, 5, "60s"),
        deployment(2, "1")
    );
    let ran = run(&yaml);
    // 10 pods of 1 CPU: 4 fit the base node, 6 wait at 60 s. The next
    // 10 s loop (they run at 0.0x s + 10 s·k) asks for 2 four-CPU nodes.
    let up: Vec<_> = ran.events(Some(CA), "ScaleUp").collect();
    assert_eq!(up.len(), 1, "{up:?}");
    let t_up = secs(up[0]);
    assert!(t_up > 60.0 && t_up <= 70.1, "{t_up}");
    assert_eq!(
        (up[0]["from"].as_str(), up[0]["to"].as_str()),
        (Some("0"), Some("2"))
    );
    // The machines boot after the 60 s provisioning delay.
    let running = times(&ran, CLOUD, "InstanceRunning", None);
    assert_eq!(running.len(), 2);
    assert!(
        running.iter().all(|t| (t - t_up - 60.0).abs() < 0.01),
        "{running:?}"
    );
    // Scaled in at 15 m to 2 pods: one burst node is empty and the other
    // holds 2 of its 4 CPUs, exactly the 0.5 threshold (a candidate: 1.34.3
    // on compares "at or below"), its pods fitting the base node. Both are
    // unneeded within two loops (≤ 920 s: the scaled-in pods terminate
    // first) and go 10 minutes (scale-down-unneeded-time) later; the
    // drained one a loop after the empty one.
    let start = times(&ran, CA, "ScaleDownStart", None);
    assert_eq!(start.len(), 2, "{start:?}");
    assert!(
        start[0] >= 900.0 + 600.0 && start[0] <= 920.1 + 600.0,
        "{start:?}"
    );
    assert!(start[1] - start[0] <= 10.1, "{start:?}");
    // Tainted, then deleted 5 s later (node-delete-delay-after-taint).
    let gone = times(&ran, CLOUD, "InstanceTerminated", None);
    assert_eq!(gone.len(), 2);
    assert!((gone[0] - start[0] - 5.0).abs() < 0.1, "{gone:?} {start:?}");
    // cloud-controller-manager deletes the Node once it is not Ready:
    // after the 50 s node-monitor-grace-period, within its 5 s period.
    let deleted = times(&ran, CLOUD, "NodeDeleted", None);
    assert_eq!(deleted.len(), 2);
    let after = deleted[0] - gone[0];
    assert!((50.0..=62.0).contains(&after), "{after}");
    let s = &ran.finished.summary;
    let a = s
        .autoscaler
        .as_ref()
        .expect("the summary counts the autoscaler's work");
    assert_eq!((a.scale_ups, a.nodes_added, a.nodes_removed), (1, 2, 2));
    // The standby machines are not counted as kubelets down.
    assert_eq!((s.nodes.total, s.nodes.down, s.pods.ready), (1, 0, 2));
    // The same seed replays exactly.
    assert_eq!(run(&yaml).digest(), ran.digest());
}

#[test]
fn a_node_not_ready_within_15_minutes_is_deleted_and_its_group_backed_off() {
    let yaml = format!(
        "name: ca\nseed: 3\nduration: 50m\ncluster:\n  nodePools:\n    - name: base\n      capacity: {{cpu: \"2\", memory: 16Gi}}\n{}{}",
        pool("slow", 4, 0, 0, 3, "20m"),
        deployment(4, "1")
    );
    let ran = run(&yaml);
    let ups = times(&ran, CA, "ScaleUp", None);
    let outs = times(&ran, CA, "ScaleUpTimedOut", None);
    assert!(ups.len() >= 3 && outs.len() >= 2, "{ups:?} {outs:?}");
    // Each request times out 15 minutes on (max-node-provision-time, seen
    // by the first loop after), its instances are deleted, and the group
    // waits 5 minutes, then 10 (the back-off doubles).
    for (u, o) in ups.iter().zip(&outs) {
        assert!(o - u >= 900.0 && o - u <= 910.1, "{u} {o}");
    }
    let wait1 = ups[1] - outs[0];
    let wait2 = ups[2] - outs[1];
    assert!((300.0..=310.1).contains(&wait1), "{wait1}");
    assert!((600.0..=610.1).contains(&wait2), "{wait2}");
    assert!(times(&ran, CLOUD, "InstanceRunning", None).is_empty());
    assert_eq!(
        times(&ran, CLOUD, "InstanceTerminated", None).len(),
        outs.len()
    );
}

#[test]
fn a_drain_moves_pods_through_evictions_unless_a_budget_holds_them() {
    let base = format!(
        "name: ca\nseed: 5\nduration: 20m\ncluster:\n  nodePools:\n{}{}",
        pool("pool", 4, 2, 1, 3, "60s"),
        deployment(2, "1")
    );
    let ran = run(&base);
    // Two pods, one on each node (the scheduler spreads them): each node is
    // 25% requested; one can go, its pod moving to the other.
    let start = times(&ran, CA, "ScaleDownStart", None);
    assert_eq!(start.len(), 1, "{start:?}");
    let evictions: Vec<_> = ran
        .events(Some(CA), "Event")
        .filter(|r| {
            r["reason"] == "ScaleDown" && r["object"].as_str().unwrap_or("").starts_with("Pod/")
        })
        .collect();
    assert_eq!(evictions.len(), 1, "{evictions:?}");
    assert_eq!(times(&ran, CLOUD, "InstanceTerminated", None).len(), 1);
    let s = &ran.finished.summary;
    assert_eq!((s.nodes.ready, s.pods.ready), (1, 2));
    // A budget allowing no disruption blocks the removal (NotEnoughPdb).
    let pdb = "  - apiVersion: policy/v1\n    kind: PodDisruptionBudget\n    metadata: {name: web, namespace: default}\n    spec:\n      maxUnavailable: 0\n      selector: {matchLabels: {app: web}}\n";
    let held = run(&format!("{base}{pdb}"));
    assert!(times(&held, CA, "ScaleDownStart", None).is_empty());
    assert_eq!(held.finished.summary.nodes.ready, 2);
}

#[test]
fn after_a_node_crash_a_replacement_comes_and_the_unready_node_goes() {
    let yaml = format!(
        "name: ca\nseed: 7\nduration: 32m\ncluster:\n  nodePools:\n{}{}timeline:\n  - at: 2m\n    crashNode: pool-1\n",
        pool("pool", 4, 2, 1, 4, "60s"),
        deployment(8, "1")
    );
    let ran = run(&yaml);
    // pool-1's pods are evicted 300 s after it goes NotReady; their
    // replacements find no room and one node is asked for.
    let ups: Vec<_> = ran.events(Some(CA), "ScaleUp").collect();
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert!(secs(ups[0]) > 120.0 + 300.0, "{}", secs(ups[0]));
    // The crashed node is removed once unneeded and unready for 20 minutes
    // (scale-down-unready-time). It went NotReady 50 s after the crash, but
    // became unneeded only when its evicted pods stopped counting: 30 s
    // past their grace period (long-terminating), after the replacement
    // node (asked for at `up`, booted 60 s later) had taken their place.
    let up = secs(ups[0]);
    let start = times(&ran, CA, "ScaleDownStart", Some("pool-1"));
    assert_eq!(start.len(), 1, "{start:?}");
    assert!(start[0] >= 120.0 + 50.0 + 1200.0, "{start:?}");
    assert!(start[0] <= up + 60.0 + 70.0 + 1210.0, "{start:?} {up}");
    assert_eq!(times(&ran, CLOUD, "NodeDeleted", Some("pool-1")).len(), 1);
    // Converged: every pod Ready on the two live nodes.
    let s = &ran.finished.summary;
    assert_eq!(
        (s.nodes.total, s.nodes.ready, s.pods.ready),
        (2, 2, 8),
        "{}",
        s.render()
    );
}

#[test]
fn least_waste_and_priority_expanders_choose_the_group() {
    let with = |extra: &str, objects: &str| {
        format!(
            "name: ca\nseed: 3\nduration: 3m\ncluster:\n{extra}  nodePools:\n    - name: base\n      capacity: {{cpu: \"1\", memory: 16Gi}}\n{}{}{}{objects}timeline:\n  - at: 1m\n    scale: {{kind: Deployment, name: web, replicas: 2}}\n",
            pool("small", 2, 0, 0, 3, "30s"),
            pool("large", 16, 0, 0, 3, "30s"),
            deployment(0, "1")
        )
    };
    let cluster = |extra: &str| with(extra, "");
    let group = |ran: &Ran| {
        let up: Vec<_> = ran.events(Some(CA), "ScaleUp").collect();
        assert_eq!(up.len(), 1, "{up:?}");
        up[0]["group"].as_str().unwrap().to_string()
    };
    // Of two 1-CPU pods the base node takes one; for the other a small
    // node leaves (2-1)/2 of its CPU idle, a large one (16-1)/16 (memory
    // alike): least-waste (the default) takes the small group.
    assert_eq!(group(&run(&cluster(""))), "small");
    assert_eq!(
        group(&run(&cluster("  autoscaler: {expander: most-pods}\n"))),
        // Both take both pods: a tie the random fallback breaks by seed.
        group(&run(&cluster("  autoscaler: {expander: most-pods}\n")))
    );
    let prio = "  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: cluster-autoscaler-priority-expander, namespace: kube-system}\n    data:\n      priorities: |\n        10:\n          - small\n        50:\n          - ^lar.*\n";
    let yaml = with("  autoscaler: {expander: priority}\n", prio);
    assert_eq!(group(&run(&yaml)), "large");
}

#[test]
fn bad_autoscaling_fields_are_named() {
    let errs =
        |yaml: &str| match kubesim::scenario::load_str("t.yaml", yaml, std::path::Path::new(".")) {
            Ok(_) => panic!("loaded"),
            Err(e) => e
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        };
    let head = "name: x\ncluster:\n";
    let e = errs(&format!(
        "{head}  autoscaler: {{expander: least-wast}}\n  nodePools:\n{}",
        pool("p", 2, 0, 0, 2, "1s")
    ));
    assert!(
        e.contains("cluster.autoscaler.expander") && e.contains("did you mean `least-waste`"),
        "{e}"
    );
    let e = errs(&format!(
        "{head}  nodePools:\n{}",
        pool("p", 2, 0, 3, 2, "1s")
    ));
    assert!(
        e.contains("cluster.nodePools[0].autoscaling.minSize"),
        "{e}"
    );
    let e = errs(&format!(
        "{head}  nodePools:\n{}",
        pool("p", 2, 5, 0, 2, "1s")
    ));
    assert!(e.contains("cluster.nodePools[0].count"), "{e}");
    let e = errs(&format!("{head}  autoscaler: {{scanInterval: 10s}}\n  nodePools:\n    - name: p\n      capacity: {{cpu: \"1\", memory: 1Gi}}\n"));
    assert!(e.contains("no node pool has `autoscaling"), "{e}");
}

#[test]
fn a_crashed_autoscaler_cut_off_from_the_cloud_scales_up_after_the_heal() {
    let yaml = format!(
        "name: ca\nseed: 3\nduration: 10m\ncluster:\n  nodePools:\n    - name: base\n      capacity: {{cpu: \"4\", memory: 16Gi}}\n{}{}timeline:\n  - at: 50s\n    crashComponent: cluster-autoscaler\n  - at: 55s\n    partition: [cloud-provider]\n  - at: 1m\n    scale: {{kind: Deployment, name: web, replicas: 10}}\n  - at: 1m30s\n    restartComponent: cluster-autoscaler\n  - at: 4m\n    heal: true\n",
        pool("burst", 4, 0, 0, 5, "60s"),
        deployment(2, "1")
    );
    let ran = run(&yaml);
    // Restarted at 90 s, the autoscaler relists and loops again, but its
    // refreshes reach the cloud only after the heal at 240 s.
    let ups = times(&ran, CA, "ScaleUp", None);
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert!(ups[0] >= 240.0 && ups[0] <= 300.0, "{ups:?}");
    let s = &ran.finished.summary;
    assert_eq!((s.nodes.ready, s.pods.ready), (3, 10), "{}", s.render());
}

#[test]
fn a_scaled_up_node_that_is_cut_off_for_a_while_is_not_a_provisioning_failure() {
    // 7 pods of 1 CPU: 4 on the base node, 3 on one burst node asked for
    // at ~10 s. At 20 m, long past the 15-minute provision time of that
    // request, the burst node is cut off for 2 minutes and goes NotReady
    // (after the 40 s node-monitor grace): it registered, so it is not
    // deleted as a timed-out instance, and after the heal it is Ready again
    // with its pods (2 minutes is within their 300 s unreachable toleration).
    let yaml = format!(
        "name: ca\nseed: 3\nduration: 26m\ncluster:\n  nodePools:\n    - name: base\n      capacity: {{cpu: \"4\", memory: 16Gi}}\n{}{}timeline:\n  - at: 20m\n    partition: [burst-1]\n  - at: 22m\n    heal: true\n",
        pool("burst", 4, 0, 0, 3, "60s"),
        deployment(7, "1")
    );
    let ran = run(&yaml);
    assert_eq!(times(&ran, CA, "ScaleUp", None).len(), 1);
    assert!(times(&ran, CA, "ScaleUpTimedOut", None).is_empty());
    assert!(times(&ran, CLOUD, "InstanceTerminated", None).is_empty());
    let s = &ran.finished.summary;
    assert_eq!((s.nodes.ready, s.pods.ready), (2, 7), "{}", s.render());
}

#[test]
fn a_node_left_tainted_by_a_crashed_autoscaler_is_untainted_after_its_restart() {
    // Two nodes, two pods: one node goes unneeded and is tainted
    // ToBeDeletedByClusterAutoscaler at `t`; the autoscaler crashes 1 s later,
    // inside the 5 s before deletion, and restarts at t + 20 s. The
    // restarted autoscaler finds a running instance tainted with no
    // deletion of its own and takes the taint off (upstream's clean-up on
    // start), so when 7 pods want room at t + 60 s both nodes take them
    // and no scale-up is needed.
    let base = format!(
        "name: ca\nseed: 5\nduration: 20m\ncluster:\n  nodePools:\n{}{}",
        pool("pool", 4, 2, 1, 3, "60s"),
        deployment(2, "1")
    );
    let first = run(&base);
    let t = times(&first, CA, "ScaleDownStart", None)[0];
    let at = |d: f64| format!("{}ms", ((t + d) * 1000.0) as u64);
    let yaml = format!(
        "{base}timeline:\n  - at: {}\n    crashComponent: cluster-autoscaler\n  - at: {}\n    restartComponent: cluster-autoscaler\n  - at: {}\n    scale: {{kind: Deployment, name: web, replicas: 7}}\n",
        at(1.0),
        at(20.0),
        at(60.0)
    )
    .replace("duration: 20m", &format!("duration: {}", at(240.0)));
    let ran = run(&yaml);
    assert!(times(&ran, CLOUD, "InstanceTerminated", None).is_empty());
    assert!(times(&ran, CA, "ScaleUp", None).is_empty());
    let s = &ran.finished.summary;
    assert_eq!((s.nodes.ready, s.pods.ready), (2, 7), "{}", s.render());
}
