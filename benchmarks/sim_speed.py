"""Simulator speed: 100,000 chat-like requests (ShareGPT-like lengths, Poisson arrivals) through the serving
simulator; target < 20 s on one core. Run pinned to one core:

    taskset -c 0 python benchmarks/sim_speed.py            # default: vllm scheduler, 4 replicas
    taskset -c 0 python benchmarks/sim_speed.py --scheduler sarathi --replicas 1 --rate 30

Prints the wall time of the simulation (request generation and the step-cost tables included) and a few results
so a change in behaviour is visible next to a change in speed. Exits 1 when over ``--limit`` seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from paraplan import catalog  # noqa: E402
from paraplan.infer import InferenceConfig  # noqa: E402
from paraplan.sim import SimConfig, make_requests, simulate_serving  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--model", default="llama-3.1-8b")
    ap.add_argument("--cluster", default="h100-sxm:8")
    ap.add_argument("--scheduler", default="vllm", choices=["static", "vllm", "orca", "sarathi"])
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--rate", type=float, default=100.0, help="requests/s over all replicas")
    ap.add_argument("--dist", default="sharegpt")
    ap.add_argument("--limit", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    model = catalog.get_model(args.model)
    cluster = catalog.get_cluster(args.cluster)
    cfg = SimConfig(scheduler=args.scheduler, replicas=args.replicas, router="least_loaded")
    best = float("inf")
    res = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        req = make_requests("poisson", args.rate, n=args.requests, input_dist=args.dist, seed=0)
        res = simulate_serving(model, cluster, req, cfg, InferenceConfig(), slo_ttft_s=1.0, slo_tpot_s=0.05)
        best = min(best, time.perf_counter() - t0)
    assert res is not None
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    print(f"{args.requests} requests ({args.dist}, Poisson {args.rate:g}/s), {args.scheduler}, {args.replicas} "
          f"replica(s) of {model.name} on {cluster.accelerator.name}: best of {args.repeat} = {best:.2f} s "
          f"(cores allowed: {sorted(cores) if cores else 'n/a'})")
    print(f"  completed {res.counts['completed']}, rejected {res.counts['rejected']}, iterations {res.iterations}, "
          f"mean batch {res.mean_batch:.1f}, TTFT p50 {res.ttft_s.p50 * 1e3:.1f} ms, TPOT p50 "
          f"{res.tpot_s.p50 * 1e3:.2f} ms, {res.output_tokens_per_s:,.0f} output tokens/s")
    if best > args.limit:
        print(f"SLOWER than the {args.limit:g} s target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
