#!/bin/sh
# The scale workload of issue 18 (../shared/bench/gen_kubesim_scale.py: nodes
# of 16 CPU / 64Gi, pods of 1 CPU / 2Gi from one Job a second over 10
# minutes, each running 600 s), run and measured with /usr/bin/time -v.
#
# Usage: scripts/scale-bench.sh [NODES PODS] ...   (default: 1000 30000)
#   e.g. scripts/scale-bench.sh 1000 30000 5000 150000
# Prints, per size: wall seconds, peak RSS, events, pods Succeeded, the
# scheduling latency line and the run digest. Run sizes alternately and take
# the best of three on a shared machine.
#
# KUBESIM_SCHEDULER_QPS=N raises the scheduler's client (KubeSchedulerConfiguration
# clientConnection qps and burst) to N: with upstream's default (50 binds a
# second) a 5,000-node run leaves pods unbound however fast its cycles are.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
gen=${KUBESIM_BENCH_GEN:-$here/../shared/bench/gen_kubesim_scale.py}
bin=$here/target/release/kubesim
[ -x "$bin" ] || (cd "$here" && cargo build --release)
[ $# -eq 0 ] && set -- 1000 30000
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
while [ $# -ge 2 ]; do
    nodes=$1 pods=$2
    shift 2
    python3 "$gen" "$nodes" "$pods" "$work/s.yaml"
    if [ -n "${KUBESIM_SCHEDULER_QPS:-}" ]; then
        q=$KUBESIM_SCHEDULER_QPS
        sed -i "s|^cluster:\$|cluster:\n  scheduler: {config: {apiVersion: kubescheduler.config.k8s.io/v1, kind: KubeSchedulerConfiguration, clientConnection: {qps: $q, burst: $q}}}|" "$work/s.yaml"
    fi
    /usr/bin/time -v "$bin" run "$work/s.yaml" --no-report --out "$work/run" >"$work/out" 2>"$work/time"
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time")
    echo "== $nodes nodes / $pods pods: wall $wall, peak RSS $((rss / 1024)) MiB"
    grep -E "^(pods|schedule|wall|digest)" "$work/out" | sed 's/^/   /'
done
