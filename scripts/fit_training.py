#!/usr/bin/env python
"""Fit the shared training parameters per accelerator family on published runs.

At most three parameters per accelerator family, nothing per row or per source:

* ``compute_derate``: multiplies every kernel time of the training step (GEMM, attention, elementwise).
  It absorbs what the kernel-efficiency curves (fitted on inference-framework kernels, see
  ``scripts/fit_efficiency.py``) do not see in training: autograd and framework kernels, weight-gradient
  GEMM layouts, clocks under sustained power, memory-allocator stalls.
* ``attention_derate``: multiplies the attention-core kernel time. Training attention (FlashAttention-2
  forward and backward) reaches a smaller fraction of peak than the inference FMHA kernels of the curves.
* ``layer_overhead_s``: fixed time per layer per micro-batch (kernel launches, Python dispatch, small ops).

The loss is the mean absolute log error over all predictable rows of that family (a robust stand-in for
the median APE). The script also reports a leave-one-source-out cross-validation, the honest estimate of
how the fit generalises to a source it has not seen, and writes ``catalog/curves/training.yaml``.

Usage: ``python scripts/fit_training.py [--data ../shared/data/train-measured.csv] [--cv] [--dry-run]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import minimize

from paraplan.errors import ParaplanError
from paraplan.validate.train import predict_row, read_rows, row_config

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "paraplan" / "catalog" / "curves" / "training.yaml"


def family_of(row: dict[str, str]) -> str | None:
    try:
        _, cluster, *_ = row_config(row)
    except (ParaplanError, ValueError, KeyError):
        return None
    return cluster.accelerator.family


def source_of(row: dict[str, str]) -> str:
    return re.split(r"[:'(]", row.get("source", ""))[0].strip()[:40]


def loss(rows: list[dict[str, str]], params: dict[str, float]) -> float:
    errs = []
    for r in rows:
        res = predict_row(r, calibration=params)
        if res.predicted is None or not res.measured:
            continue
        errs.append(abs(math.log(res.predicted / res.measured)))
    return float(np.mean(errs)) if errs else 0.0


PARAMS = ("compute_derate", "attention_derate", "layer_overhead_s")
PRIOR_WEIGHT = 0.02


def _unpack(x: np.ndarray, names: tuple[str, ...], fixed: dict[str, float]) -> dict[str, float]:
    p = dict(fixed)
    for name, v in zip(names, x, strict=True):
        p[name] = max(v, 0.0) * 1e-6 if name == "layer_overhead_s" else math.exp(v)
    return p


def fit(rows: list[dict[str, str]], names: tuple[str, ...] = PARAMS,
        fixed: dict[str, float] | None = None) -> dict[str, float]:
    """Minimise mean |log error| over ``rows`` for the parameters ``names`` (others from ``fixed``)."""
    fixed = dict(fixed or {})
    x0 = np.array([20.0 if n == "layer_overhead_s" else 0.1 for n in names])
    simplex = [x0]
    for i, n in enumerate(names):
        x = x0.copy()
        x[i] += 60.0 if n == "layer_overhead_s" else 0.4
        simplex.append(x)
    def objective(x: np.ndarray) -> float:
        p = _unpack(x, names, fixed)
        # a weak prior towards the neutral value keeps a parameter the rows cannot identify (e.g. the
        # attention derate on runs without flash attention) at 1 instead of drifting anywhere
        prior = sum(math.log(p[n]) ** 2 for n in names if n != "layer_overhead_s")
        return loss(rows, p) + PRIOR_WEIGHT * prior

    best = minimize(objective, x0=x0, method="Nelder-Mead",
                    options={"xatol": 1e-3, "fatol": 1e-5, "maxiter": 60 * len(names),
                             "initial_simplex": np.array(simplex)})
    p = _unpack(best.x, names, fixed)
    return {k: round(float(v), 9 if k == "layer_overhead_s" else 4) for k, v in p.items()}


def default_params(fams: dict[str, dict[str, float]]) -> dict[str, float]:
    """Geometric mean of the derates, arithmetic mean of the overheads, over the fitted families."""
    out: dict[str, float] = {}
    for k in PARAMS:
        vals = [v[k] for v in fams.values() if k in v]
        if not vals:
            continue
        out[k] = round(float(np.mean(vals)), 9) if k == "layer_overhead_s" else round(
            float(np.exp(np.mean(np.log(vals)))), 4)
    return out


def fit_families(by_fam: dict[str, list[dict[str, str]]], min_rows: int, full_rows: int,
                 log: bool = True) -> dict[str, dict[str, float]]:
    """Families with >= ``full_rows`` rows get all parameters; smaller ones (>= ``min_rows``) only the
    compute derate, the rest from the default of the large families."""
    fams: dict[str, dict[str, float]] = {}
    for fam, rs in sorted(by_fam.items()):
        if len(rs) >= full_rows:
            fams[fam] = fit(rs)
            if log:
                print(f"{fam}: {len(rs)} rows -> {fams[fam]}  loss={loss(rs, fams[fam]):.4f}")
    default = default_params(fams)
    for fam, rs in sorted(by_fam.items()):
        if min_rows <= len(rs) < full_rows:
            fams[fam] = fit(rs, ("compute_derate",), {k: v for k, v in default.items() if k != "compute_derate"})
            if log:
                print(f"{fam}: {len(rs)} rows (compute_derate only) -> {fams[fam]}")
        elif len(rs) < min_rows and log:
            print(f"{fam}: {len(rs)} rows, below --min-rows; uses the default")
    fams["default"] = default
    return fams


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "train-measured.csv"))
    ap.add_argument("--cv", action="store_true", help="leave-one-source-out cross-validation")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--min-rows", type=int, default=5)
    ap.add_argument("--full-rows", type=int, default=20)
    args = ap.parse_args()

    rows = read_rows(args.data)
    by_fam: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        fam = family_of(r)
        if fam and r.get("config_complete", "").strip().lower() != "no":
            by_fam[fam].append(r)
    fams = fit_families(by_fam, args.min_rows, args.full_rows)

    def all_apes(params_for) -> np.ndarray:
        out = []
        for r in rows:
            fam = family_of(r)
            res = predict_row(r, calibration=params_for(fam, r))
            if res.ape is not None:
                out.append(res.ape)
        return np.array(out)

    apes = all_apes(lambda fam, r: fams.get(fam or "", fams["default"]))
    summary = {"median_ape_pct": round(100 * float(np.median(apes)), 2),
               "p90_ape_pct": round(100 * float(np.percentile(apes, 90)), 2), "n_predicted": int(apes.size)}
    print("in-sample:", summary)

    cv = None
    if args.cv:
        sources = sorted({source_of(r) for r in rows})
        cv_apes = []
        for src in sources:
            held = [r for r in rows if source_of(r) == src]
            train = [r for r in rows if source_of(r) != src]
            tb: dict[str, list[dict[str, str]]] = defaultdict(list)
            for r in train:
                fam = family_of(r)
                if fam and r.get("config_complete", "").strip().lower() != "no":
                    tb[fam].append(r)
            tf = fit_families(tb, args.min_rows, args.full_rows, log=False)
            fallback = tf["default"]
            for r in held:
                res = predict_row(r, calibration=tf.get(family_of(r) or "", fallback))
                if res.ape is not None:
                    cv_apes.append(res.ape)
            print(f"  held out {src!r}: {len(held)} rows")
        a = np.array(cv_apes)
        cv = {"median_ape_pct": round(100 * float(np.median(a)), 2),
              "p90_ape_pct": round(100 * float(np.percentile(a, 90)), 2), "n_predicted": int(a.size)}
        print("leave-one-source-out:", cv)

    doc = {
        "fitted": dt.date.today().isoformat(),
        "method": "scripts/fit_training.py: Nelder-Mead on mean |log(pred/measured)| per accelerator family "
                  "over all predictable rows of the data; compute_derate, attention_derate, layer_overhead_s "
                  "per family with >= 20 rows, compute_derate only for smaller families; default = mean "
                  "over the large families",
        "data": Path(args.data).name,
        "families": fams,
        "validation": {**summary, **({"leave_one_source_out": cv} if cv else {})},
    }
    if args.dry_run:
        print(yaml.safe_dump(doc, sort_keys=False))
    else:
        OUT.write_text("# Generated by scripts/fit_training.py; do not edit by hand.\n"
                       + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
