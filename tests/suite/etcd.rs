//! The etcd Raft group under faults: election timing, durability of
//! committed writes across leader changes, and stalls without quorum.

use crate::common;

use common::{run_full, scenario, secs};
use kubesim::model::etcd::EtcdConfig;

const LEADER_CRASH: &str = r#"
name: leader-crash
duration: 90s
cluster:
  etcd: {members: 3}
  nodePools:
    - {name: n, count: 2, capacity: {cpu: "2", memory: 4Gi}}
timeline:
  - {at: 30s, crashEtcd: leader}
  - {at: 60s, restartEtcd: crashed}
"#;

/// Time of the first `RaftLeaderElected` at or after `t`.
fn elected_after(ran: &common::Ran, t: f64) -> Option<f64> {
    ran.events(None, "RaftLeaderElected")
        .map(secs)
        .find(|&x| x >= t)
}

#[test]
fn elections_finish_within_the_bounds_the_timeouts_imply() {
    let cfg = EtcdConfig::default();
    let tick = cfg.heartbeat_interval.as_secs_f64();
    let timeout = tick * cfg.election_ticks as f64;
    let s = scenario(LEADER_CRASH);
    let mut first_round = 0;
    for seed in 1..=12 {
        let ran = run_full(&s, Some(seed));
        // Start-up: members' timeouts are randomized in [T, 2T) ticks, and
        // each member's first tick falls within one tick of time zero.
        let first = elected_after(&ran, 0.0).expect("a leader at start-up");
        assert!(
            first >= timeout - tick && first < 2.0 * timeout + 2.0 * tick + 0.1,
            "seed {seed}: first leader at {first}s"
        );
        // After the leader dies, a follower's randomized timeout in [T, 2T)
        // fires within that window after the last heartbeat it got (at most a
        // tick before the crash), plus a pre-vote and a vote round trip.
        let crash = ran.events(None, "EtcdCrash").map(secs).next().unwrap();
        let next = elected_after(&ran, crash).expect("a new leader");
        let gap = next - crash;
        assert!(
            gap >= timeout - tick,
            "seed {seed}: re-elected after {gap}s"
        );
        // A split vote costs at most one more randomized timeout.
        assert!(gap < 4.0 * timeout + 3.0 * tick, "seed {seed}: took {gap}s");
        if gap < 2.0 * timeout + 2.0 * tick {
            first_round += 1;
        }
        assert!(
            ran.finished.engine.shared.etcd.divergent_applies() == 0,
            "members never apply different entries at one index"
        );
    }
    assert!(
        first_round >= 10,
        "most elections finish in the first round: {first_round}/12"
    );
}

#[test]
fn no_committed_write_is_lost_across_leader_changes() {
    let s = scenario(
        r#"
name: churn
duration: 150s
cluster:
  etcd: {members: 3}
  nodePools:
    - {name: n, count: 3, capacity: {cpu: "2", memory: 4Gi}}
objects:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c0}, data: {k: v}}
timeline:
  - {at: 20s, crashEtcd: leader}
  - {at: 25s, apply: {apiVersion: v1, kind: ConfigMap, metadata: {name: c1}, data: {k: v}}}
  - {at: 40s, restartEtcd: crashed}
  - {at: 60s, crashEtcd: leader}
  - {at: 65s, apply: {apiVersion: v1, kind: ConfigMap, metadata: {name: c2}, data: {k: v}}}
  - {at: 80s, restartEtcd: crashed}
  - {at: 100s, crashEtcd: leader}
  - {at: 120s, restartEtcd: crashed}
"#,
    );
    for seed in 1..=5 {
        let ran = run_full(&s, Some(seed));
        let store = &ran.finished.engine.shared.etcd;
        assert_eq!(store.divergent_applies(), 0, "seed {seed}");
        assert!(ran.finished.summary.etcd.leader_changes >= 4, "seed {seed}");
        // Every write a client was told succeeded is in the committed history
        // the apiserver watched, at the resourceVersion it was told.
        let committed: std::collections::BTreeSet<u64> =
            ran.writes("").map(|w| w["rv"].as_u64().unwrap()).collect();
        let mut acked = 0;
        for r in ran
            .events(Some("kubectl"), "ActionResult")
            .filter(|r| r["action"].as_str().unwrap().starts_with("apply"))
        {
            let result = r["result"].as_str().unwrap();
            let rv: u64 = result
                .rsplit(' ')
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or_else(|| panic!("seed {seed}: {result}"));
            assert!(
                committed.contains(&rv),
                "seed {seed}: acked rv {rv} not committed"
            );
            acked += 1;
        }
        assert_eq!(acked, 3, "seed {seed}: all three ConfigMaps created");
        for name in ["c0", "c1", "c2"] {
            assert!(
                store.keys().any(|k| k.name == name),
                "seed {seed}: {name} survived every leader change"
            );
        }
        // Leases were renewed after the last change: the group serves writes.
        let last = ran.writes("Lease/").map(secs).last().unwrap();
        assert!(last > 140.0, "seed {seed}: last lease write at {last}");
    }
}

#[test]
fn writes_stall_without_quorum_and_resume_after() {
    let s = scenario(
        r#"
name: quorum-loss
duration: 120s
cluster:
  etcd: {members: 3}
  nodePools:
    - {name: n, count: 3, capacity: {cpu: "2", memory: 4Gi}}
timeline:
  - {at: 30s, crashEtcd: etcd-0}
  - {at: 30s, crashEtcd: etcd-1}
  - {at: 40s, apply: {apiVersion: v1, kind: ConfigMap, metadata: {name: during}}}
  - {at: 70s, restartEtcd: crashed}
  - {at: 90s, apply: {apiVersion: v1, kind: ConfigMap, metadata: {name: after}}}
"#,
    );
    let ran = run_full(&s, None);
    // Proposals already in flight at the crash may finish within a round trip.
    let stalled: Vec<f64> = ran
        .writes("")
        .map(secs)
        .filter(|&t| t > 30.1 && t < 70.0)
        .collect();
    assert!(stalled.is_empty(), "no commit without quorum: {stalled:?}");
    let resumed = ran
        .writes("")
        .map(secs)
        .find(|&t| t >= 70.0)
        .expect("writes resume");
    // A restarted member campaigns after one randomized election timeout.
    assert!(resumed < 70.0 + 5.0, "resumed at {resumed}");
    let results: Vec<(String, String)> = ran
        .events(Some("kubectl"), "ActionResult")
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(a, _)| a.starts_with("apply"))
        .collect();
    assert_eq!(results.len(), 2);
    assert!(
        results[0].1.contains("etcdserver: request timed out"),
        "the apiserver answers with etcd's timeout: {results:?}"
    );
    assert!(results[1].1.starts_with("ok"), "{results:?}");
    assert!(ran.finished.summary.etcd.request_timeouts > 0);
}

#[test]
fn the_apiserver_sees_every_revision_when_its_etcd_endpoint_dies() {
    // etcd-0 is the apiserver's first endpoint and carries its watch. When it
    // dies the apiserver re-watches on another member from the last revision
    // it saw (the member replays what it applied since: see
    // `EtcdStore::changes_since`), so the committed revisions it traces stay
    // contiguous: none missed, none twice.
    let s = scenario(
        r#"
name: watch-failover
duration: 120s
cluster:
  etcd: {members: 3}
  nodePools:
    - {name: n, count: 4, capacity: {cpu: "2", memory: 4Gi}}
timeline:
  - {at: 20s, crashEtcd: etcd-0}
  - {at: 60s, restartEtcd: etcd-0}
  - {at: 80s, crashEtcd: etcd-1}
"#,
    );
    for seed in 1..=4 {
        let ran = run_full(&s, Some(seed));
        let revs: Vec<u64> = ran.writes("").map(|w| w["rv"].as_u64().unwrap()).collect();
        let seeded = ran.events(Some("etcd"), "Seed").count() as u64;
        let expected: Vec<u64> = (seeded + 1..=seeded + revs.len() as u64).collect();
        assert_eq!(
            revs, expected,
            "seed {seed}: revisions traced in order without gaps"
        );
        assert_eq!(
            *revs.last().unwrap(),
            ran.finished.engine.shared.etcd.revision(),
            "seed {seed}: the apiserver caught up with etcd"
        );
    }
}

/// `crashEtcd: leader` while an election is under way used to fail ("no
/// member leads at this instant"). It now waits for the election to finish
/// and crashes the member that wins, saying how long it waited; when no
/// member can win (no quorum is up), it gives up after ten election
/// timeouts and says so, and the group recovers once members restart.
#[test]
fn crashing_the_leader_during_an_election_waits_for_the_new_leader() {
    let s = scenario(
        r#"
name: crash-during-election
duration: 90s
cluster:
  etcd: {members: 3}
  nodePools:
    - {name: n, count: 2, capacity: {cpu: "2", memory: 4Gi}}
timeline:
  - {at: 30s, crashEtcd: leader}
  - {at: 30010ms, crashEtcd: leader}
  - {at: 40s, crashEtcd: leader}
  - {at: 60s, restartEtcd: crashed}
"#,
    );
    for seed in 1..=5 {
        let ran = run_full(&s, Some(seed));
        let results: Vec<(f64, String)> = ran
            .events(Some("kubectl"), "ActionResult")
            .map(|r| (secs(r), r["result"].as_str().unwrap().to_string()))
            .collect();
        // Four actions; restartEtcd: crashed reports once per member (2).
        assert_eq!(results.len(), 5, "seed {seed}: {results:?}");
        assert_eq!(results[0], (30.0, "ok".to_string()), "seed {seed}");
        // The second crash waited: a follower's randomized timeout in
        // [1 s, 2 s) after the last heartbeat (≤ 100 ms before 30 s), a
        // pre-vote and a vote: the new leader is elected after 30.9 s and,
        // barring a split vote, before 32.2 s.
        let elected = elected_after(&ran, 30.0).unwrap();
        assert!(elected > 30.9 && elected < 34.3, "seed {seed}: {elected}");
        let crashes: Vec<(f64, String)> = ran
            .events(Some("kubectl"), "EtcdCrash")
            .map(|r| (secs(r), r["target"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(crashes.len(), 2, "seed {seed}: {crashes:?}");
        // The driver looks every millisecond: it crashes the winner within
        // 1 ms of its election, a member other than the first leader.
        let (at, ref second) = crashes[1];
        assert!(at >= elected && at <= elected + 0.001, "seed {seed}: {at}");
        assert_ne!(second, &crashes[0].1, "seed {seed}");
        let new_leader = ran
            .events(None, "RaftLeaderElected")
            .find(|r| secs(r) == elected)
            .unwrap()["component"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(second, &new_leader, "seed {seed}");
        // It waited from 30.010 s to the crash, in whole milliseconds.
        let waited_ms = ((at - 30.010) * 1000.0).round() as i64;
        assert_eq!(
            results[1],
            (
                at,
                format!(
                    "ok: waited {waited_ms} ms for the election to finish, \
                     then crashed the new leader {second}"
                )
            ),
            "seed {seed}"
        );
        // With two of three members down no leader can be elected: the
        // third crash gives up ten election timeouts (10 s) after 40 s.
        assert_eq!(
            results[2],
            (
                50.0,
                "failed: waited 10000 ms for the election to finish and no member was \
                 elected (a quorum of members must be up to elect a leader); nothing crashed"
                    .to_string()
            ),
            "seed {seed}"
        );
        assert_eq!(results[3], (60.0, "ok".to_string()), "seed {seed}");
        assert_eq!(results[4], (60.0, "ok".to_string()), "seed {seed}");
        // Recovery: both members restart at 60 s, a leader is elected and
        // the kubelets' Lease renewals (every 10 s) commit again.
        assert!(elected_after(&ran, 60.0).is_some(), "seed {seed}");
        let last = ran.writes("Lease/").map(secs).last().unwrap();
        assert!(last > 80.0, "seed {seed}: last lease write at {last}");
        assert_eq!(ran.finished.engine.shared.etcd.divergent_applies(), 0);
    }
}

/// A restart heals the crashes before it, so it also ends a `crashEtcd:
/// leader` still waiting for the election: without this, the wait crashed
/// the member elected after the heal and nothing restarted it (a drawn
/// leader kill heals by `restartEtcd: crashed` at its end and must leave
/// every member up).
#[test]
fn a_restart_during_a_leader_wait_ends_the_wait_and_every_member_stays_up() {
    let s = scenario(
        r#"
name: restart-during-election
duration: 60s
cluster:
  etcd: {members: 3}
  nodePools:
    - {name: n, count: 2, capacity: {cpu: "2", memory: 4Gi}}
timeline:
  - {at: 30s, crashEtcd: leader}
  - {at: 30010ms, crashEtcd: leader}
  - {at: 30200ms, restartEtcd: crashed}
"#,
    );
    for seed in 1..=5 {
        let ran = run_full(&s, Some(seed));
        let results: Vec<(f64, String)> = ran
            .events(Some("kubectl"), "ActionResult")
            .map(|r| (secs(r), r["result"].as_str().unwrap().to_string()))
            .collect();
        // No follower's election timeout (≥ 1 s after the last heartbeat,
        // which was ≤ 100 ms before 30 s) has fired by 30.2 s, so the second
        // crash is still waiting when the restart (line 11) comes: it gives
        // up after 190 ms; then the restart of the one crashed member.
        assert_eq!(
            results,
            vec![
                (30.0, "ok".to_string()),
                (
                    30.2,
                    "failed: waited 190 ms for the election to finish, then the restartEtcd \
                     at line 11 came first; nothing crashed"
                        .to_string()
                ),
                (30.2, "ok".to_string()),
            ],
            "seed {seed}"
        );
        let crashes = ran.events(Some("kubectl"), "EtcdCrash").count();
        assert_eq!(crashes, 1, "seed {seed}");
        // Every member ends up, a leader is elected and Leases commit again.
        assert!(elected_after(&ran, 30.0).is_some(), "seed {seed}");
        let last = ran.writes("Lease/").map(secs).last().unwrap();
        assert!(last > 50.0, "seed {seed}: last lease write at {last}");
    }
}
