#!/usr/bin/env python3
"""A scenario whose timeline holds N bare-Pod `apply:` entries (issue 18, loading at scale).

Usage: gen-bare-pods.py N OUT.yaml [NODES]

The same cluster as /work/shared/bench/gen_kubesim_scale.py (NODES, default
1000, of 16 CPU / 64Gi with busybox preloaded; the controller-manager and
apiserver limits raised), but with no Jobs: entry i applies pod-i (requests =
limits = 1 CPU / 2Gi, run 600 s, restartPolicy Never) in `default` at
1 + floor(i * 600 / N) s, so the N pods are spread evenly over 600 s. It is
the load-time benchmark of a long timeline: `kubesim validate OUT.yaml`
decodes every entry, and tests/load_scale.rs bounds what that allocates.
"""
import sys


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    nodes = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    with open(out, "w") as f:
        f.write(f"name: bare-pods-{nodes}-{n}\n")
        f.write(f"description: {nodes} nodes (16 CPU / 64Gi), {n} bare pods (1 CPU / 2Gi) applied over 10 minutes, each running 600 s.\n")
        f.write("seed: 1\n")
        f.write("duration: 2000s\n")
        f.write("traceLevel: faults\n")
        f.write("cluster:\n")
        f.write("  apiserver: {maxRequestsInflight: 4000, maxMutatingRequestsInflight: 2000}\n")
        f.write("  controllerManager: {kubeApiQps: 2000, kubeApiBurst: 2000}\n")
        f.write("  images: {busybox:1.36: 4Mi}\n")
        f.write("  nodePools:\n")
        f.write("    - name: node\n")
        f.write(f"      count: {nodes}\n")
        f.write("      capacity: {cpu: \"16\", memory: 64Gi}\n")
        f.write("      preloadedImages: [busybox:1.36]\n")
        f.write("timeline:\n")
        for i in range(n):
            at = 1 + int(i * 600.0 / n)
            f.write(
                f"  - {{at: {at}s, apply: {{apiVersion: v1, kind: Pod, metadata: {{name: pod-{i}, namespace: default, "
                f"annotations: {{kubesim.io/run-for: 600s}}}}, spec: {{restartPolicy: Never, containers: [{{name: work, "
                f"image: busybox:1.36, resources: {{requests: {{cpu: \"1\", memory: 2Gi}}, limits: {{cpu: \"1\", memory: 2Gi}}}}}}]}}}}}}\n"
            )


if __name__ == "__main__":
    main()
