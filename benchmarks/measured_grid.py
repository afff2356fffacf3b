#!/usr/bin/env python
"""Issue 8 benchmark: calibrate this machine, run the full measured grid, report the errors of every layer.

    python benchmarks/measured_grid.py [--device cpu|cuda] [--profile existing.yaml] [--out-dir out/measured]
                                       [--grid full|quick] [--repredict old-report.json]

Writes ``profile-<device>.yaml`` (unless --profile), ``measured-<device>.json`` (the validate-measured report) and
``measured-<device>.md`` (the tables of docs/calibration.md) to --out-dir, and prints the Markdown. Targets on the
2-core CPU: training median APE <= 15 %, inference <= 20 %, calibrate + grid under 5 minutes. The machine should
be otherwise idle: the load average before and after is recorded, since other processes on the same cores slow
the measured steps (and the ranks' shared-core factor) but not the predictions.

``--repredict report.json`` skips measuring: the stored measurements are predicted again with --profile.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.2f}" if x < 10 else f"{x * 1e3:.0f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def markdown(report: dict, timings: dict[str, float], load: dict[str, list[float]]) -> str:
    lines = [f"Device `{report['device']}`, grid `{report['grid']}`, {report['threads']} thread(s) per process, "
             f"{report['dtype']}; profile: {report['profile']}.", "",
             "| row | kind | configuration | measured ms | spec | curves | kernels | calibrated | APE |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        p = r["predicted_by_layer"]
        ape = _pct(r["ape"]) if r["ape"] is not None else f"skipped: {r['skipped']}"
        lines.append(f"| {r['row_id']} | {r['kind']} | {r['label']} | {_ms(r['measured'])} | "
                     + " | ".join(_ms(p.get(k)) for k in ("spec", "curves", "kernels", "calibrated")) + f" | {ape} |")
    lines += ["", "| layer | training median / p90 APE | inference median / p90 APE |", "|---|---:|---:|"]
    for lay, d in report["by_layer"].items():
        lines.append(f"| {lay} | {_pct(d['training']['median_ape'])} / {_pct(d['training']['p90_ape'])} | "
                     f"{_pct(d['inference']['median_ape'])} / {_pct(d['inference']['p90_ape'])} |")
    lines += ["", "| by kind (calibrated) | median APE | p90 APE | n |", "|---|---:|---:|---:|"]
    for kind, d in report["by_kind"].items():
        lines.append(f"| {kind} | {_pct(d['median_ape'])} | {_pct(d['p90_ape'])} | {d['n_predicted']} |")
    t = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    lines += ["", f"Time: {t}. Load average (1 min) before / after: {load['before'][0]:.2f} / {load['after'][0]:.2f}."]
    for fam, tg in report["targets"].items():
        lines.append(f"Target {fam}: median {_pct(tg['median_ape'])} <= {_pct(tg['target_median_ape'])}: "
                     f"{'met' if tg['met'] else 'NOT met'}.")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--profile", help="use this profile instead of calibrating now")
    ap.add_argument("--out-dir", default="out/measured")
    ap.add_argument("--grid", default="full", choices=("full", "quick"))
    ap.add_argument("--repredict", help="a report JSON whose measurements are predicted again (no measuring)")
    args = ap.parse_args()

    from paraplan.calibrate import load_profile, save_profile
    from paraplan.calibrate.profile import Profile
    from paraplan.validate.measured import repredict, validate_measured

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    load = {"before": list(os.getloadavg())}
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    def progress(name: str, done: int, total: int) -> None:
        if done == total:
            print(f"  [{time.perf_counter() - t_all:6.1f} s] {name}", file=sys.stderr, flush=True)

    if args.profile:
        prof = load_profile(args.profile)
    else:
        from paraplan.calibrate.run import calibrate

        t = time.perf_counter()
        doc = calibrate(args.device, quick=args.grid == "quick", progress=progress)
        timings["calibrate"] = time.perf_counter() - t
        path = save_profile(doc, out / f"profile-{args.device}.yaml")
        prof = Profile(doc, str(path))
    if args.repredict:
        report = repredict(json.loads(Path(args.repredict).read_text()), prof)
    else:
        t = time.perf_counter()
        report = validate_measured(prof, args.device, grid=args.grid, progress=progress)
        timings["validate measured"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all
    load["after"] = list(os.getloadavg())
    doc_r = {**report.to_json(), "timings_s": timings, "load_average": load}
    (out / f"measured-{args.device}.json").write_text(json.dumps(doc_r, indent=1), encoding="utf-8")
    md = markdown(doc_r, timings, load)
    (out / f"measured-{args.device}.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
