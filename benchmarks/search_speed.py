"""Planner speed (issue 3, section 3). A benchmark, not a test: run it on one core and read the numbers.

    taskset -c 0 python benchmarks/search_speed.py [--repeat 5] [--json speed.json]

Measures

1. the full search of GPT-3 175B on 1024 A100 (dgx-a100:1024, global batch 1536, 2048 tokens): strategies
   evaluated (priced through evaluate_training) per second, as ``n_evaluated / elapsed_s`` of the search
   result, in a warm process (catalog and curves loaded) and in the first search of a process;
2. the full search of the 1T model on 3072 A100 (gpt-1t, dgx-a100:3072, global batch 3072) end to end:
   ``paraplan plan train ... --json -`` as a fresh process, start-up included (wall clock);
3. for reference, evaluate_training alone on the legal strategies of case 1, in the planner's chunks.

Targets: (1) >= 1,000,000 strategies/s, (2) < 2 s. Each figure is the median of ``--repeat`` runs (min and
max shown too).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASE_175B = {"model": "gpt-3-175b", "cluster": "dgx-a100:1024", "global_batch": 1536, "seq_len": 2048}
CASE_1T = {"model": "gpt-1t", "cluster": "dgx-a100:3072", "global_batch": 3072, "seq_len": 2048}


def _stats(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def first_search_in_a_process(case: dict) -> dict:
    """A fresh interpreter: import, load the catalog, then time the first search (curves loaded inside)."""
    code = (
        "import json, time; from paraplan import catalog; from paraplan.search import search; "
        "from paraplan.train import Workload; "
        f"m = catalog.get_model({case['model']!r}); c = catalog.get_cluster({case['cluster']!r}); "
        f"r = search(m, c, {case['global_batch']}, Workload(seq_len={case['seq_len']})); "
        "print(json.dumps({'n_evaluated': r.n_evaluated, 'elapsed_s': r.elapsed_s}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def end_to_end(case: dict) -> tuple[float, dict]:
    """Wall clock of the CLI as a fresh process, start-up and JSON output included."""
    cmd = [sys.executable, "-m", "paraplan.cli", "plan", "train", "--model", case["model"], "--cluster",
           case["cluster"], "--global-batch", str(case["global_batch"]), "--seq", str(case["seq_len"]), "--json", "-"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    return wall, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", dest="json_out", default=None, help="write the figures as JSON")
    args = ap.parse_args()

    from paraplan import catalog
    from paraplan.rules import get_framework
    from paraplan.search import CHUNK, build_space, enumerate_legal, search
    from paraplan.strategy import StrategyArrays
    from paraplan.train import Workload, evaluate_training

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info = {"python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
            "cpus_allowed": cpus, "chunk": CHUNK}
    print(f"python {info['python']} on {info['machine']}, CPUs allowed: {cpus} (use taskset -c 0 for one core)")

    # 1. warm search rate, 175B on 1024 A100
    m = catalog.get_model(CASE_175B["model"])
    c = catalog.get_cluster(CASE_175B["cluster"])
    w = Workload(seq_len=CASE_175B["seq_len"])
    search(m, c, CASE_175B["global_batch"], w)  # warm: catalog, curves, framework rules
    warm = [search(m, c, CASE_175B["global_batch"], w) for _ in range(args.repeat)]
    rates = [r.n_evaluated / r.elapsed_s for r in warm]
    n_eval = warm[0].n_evaluated
    cold = [first_search_in_a_process(CASE_175B) for _ in range(args.repeat)]
    cold_rates = [x["n_evaluated"] / x["elapsed_s"] for x in cold]

    # 3. evaluate_training alone on the same strategies, in the planner's chunks
    fw = get_framework("megatron")
    en = enumerate_legal(m, c, build_space(m, c.n_accelerators, fw, CASE_175B["global_batch"], ["bf16"]),
                         CASE_175B["seq_len"], CASE_175B["global_batch"], fw)
    chunks = [StrategyArrays.from_columns(**x, global_batch=CASE_175B["global_batch"]) for x in en.chunks()]
    eval_rates = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for s in chunks:
            evaluate_training(m, c, s, w, fw)
        eval_rates.append(en.n_legal / (time.perf_counter() - t0))

    # 2. end to end, 1T on 3072 A100
    runs = [end_to_end(CASE_1T) for _ in range(args.repeat)]
    walls = [r[0] for r in runs]
    doc = runs[0][1]

    res = {
        "machine": info,
        "search_175b_1024_a100": {**CASE_175B, "n_evaluated": n_eval, "n_candidates": warm[0].n_candidates,
                                  "n_feasible": warm[0].n_feasible, "n_timed": warm[0].n_timed,
                                  "warm_strategies_per_s": _stats(rates),
                                  "warm_elapsed_s": _stats([r.elapsed_s for r in warm]),
                                  "first_search_strategies_per_s": _stats(cold_rates),
                                  "first_search_elapsed_s": _stats([x["elapsed_s"] for x in cold]),
                                  "evaluate_training_only_strategies_per_s": _stats(eval_rates)},
        "end_to_end_1t_3072_a100": {**CASE_1T, "n_evaluated": doc["n_evaluated"], "n_feasible": doc["n_feasible"],
                                    "search_elapsed_s": doc["elapsed_s"], "wall_s": _stats(walls),
                                    "best": doc["top"][0]["label"] if doc["top"] else None},
    }
    s1, s2 = res["search_175b_1024_a100"], res["end_to_end_1t_3072_a100"]
    print(f"\nGPT-3 175B, 1024 A100, global batch 1536: {n_eval:,} legal strategies priced "
          f"(of {s1['n_candidates']:,} in the grid, {s1['n_feasible']:,} fit; memory priced for all, step time for "
          f"the {s1['n_timed']:,} that fit)")
    print(f"  search, warm process:     {s1['warm_strategies_per_s']['median'] / 1e6:.2f} M strategies/s "
          f"(min {s1['warm_strategies_per_s']['min'] / 1e6:.2f}, max {s1['warm_strategies_per_s']['max'] / 1e6:.2f}); "
          f"{s1['warm_elapsed_s']['median'] * 1e3:.1f} ms")
    print(f"  search, first in process: {s1['first_search_strategies_per_s']['median'] / 1e6:.2f} M strategies/s; "
          f"{s1['first_search_elapsed_s']['median'] * 1e3:.1f} ms (loads the efficiency curves)")
    print(f"  evaluate_training alone:  {s1['evaluate_training_only_strategies_per_s']['median'] / 1e6:.2f} M "
          "strategies/s (memory AND step time of every legal strategy)")
    ok_w = s1["warm_strategies_per_s"]["median"] >= 1e6
    ok_c = s1["first_search_strategies_per_s"]["median"] >= 1e6
    print(f"  target >= 1.00 M/s: warm {'met' if ok_w else 'MISSED'}, first search {'met' if ok_c else 'MISSED'}")
    print("\nGPT 1T, 3072 A100, global batch 3072, end to end (`paraplan plan train ... --json -`, a new process):")
    print(f"  wall {s2['wall_s']['median']:.2f} s (min {s2['wall_s']['min']:.2f}, max {s2['wall_s']['max']:.2f}); "
          f"search {s2['search_elapsed_s'] * 1e3:.0f} ms for {s2['n_evaluated']:,} strategies; best {s2['best']}")
    print(f"  target < 2 s: {'met' if s2['wall_s']['median'] < 2.0 else 'MISSED'}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
