"""Fit the shared inference parameters per engine kind; writes ``src/paraplan/catalog/curves/inference.yaml``.

For every engine kind with enough rows in ``infer-measured.csv`` (``trtllm``, ``vllm``, ``deepspeed``, ``hf``) two
or three parameters of :data:`paraplan.infer.PARAM_DEFAULTS` are fitted by Nelder-Mead (deterministic start and
simplex) on the mean |log(predicted / measured)| over all predictable rows of that kind, with the rows predicted
exactly as ``paraplan validate infer`` predicts them (estimator, simulator, speculative model). Kinds with fewer
rows (``sglang``, ``vllm`` >= 0.6, unknown engines) use ``default``: the compiled-engine (``trtllm``) values.
Nothing is fitted per row.

    python scripts/fit_infer.py                       # ../shared/data/infer-measured.csv -> the yaml
    python scripts/fit_infer.py --data X.csv --out /tmp/inference.yaml --maxiter 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from paraplan.validate.infer import accepted_tokens, engine_kind, predict_row, read_rows  # noqa: E402

#: which parameters are fitted per kind (the others stay neutral)
FIT: dict[str, tuple[str, ...]] = {
    # C++ runtime + CUDA graphs: kernel efficiency, a small per-step cost
    "trtllm": ("compute_derate", "step_overhead_s", "seq_overhead_s"),
    # Python schedulers of 2024 (vLLM 0.5, DeepSpeed-FastGen 0.2): host time per step and per sequence
    "vllm-0.5": ("compute_derate", "step_overhead_s", "seq_overhead_s"),
    "deepspeed": ("compute_derate", "step_overhead_s", "seq_overhead_s"),
    # eager PyTorch (Hugging Face): kernel-launch time per layer, host work per speculative step
    "hf": ("layer_overhead_s", "spec_step_overhead_s"),
}
#: optimisation space: log(derate); overheads in ms / us, kept >= 0
SCALE = {"compute_derate": None, "step_overhead_s": 1e-3, "layer_overhead_s": 1e-6, "seq_overhead_s": 1e-6,
         "spec_step_overhead_s": 1e-3}
START = {"compute_derate": 0.0, "step_overhead_s": 2.0, "layer_overhead_s": 20.0, "seq_overhead_s": 20.0,
         "spec_step_overhead_s": 1.0}
STEP = {"compute_derate": 0.15, "step_overhead_s": 5.0, "layer_overhead_s": 40.0, "seq_overhead_s": 60.0,
        "spec_step_overhead_s": 3.0}
MIN_ROWS = 20
#: loss charged for a row the model cannot predict under some parameters (so skipping never pays)
SKIP_PENALTY = math.log(2.0)
PRIOR_WEIGHT = 0.02


def _unpack(x: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    p = {"compute_derate": 1.0, "step_overhead_s": 0.0, "layer_overhead_s": 0.0, "seq_overhead_s": 0.0,
         "spec_step_overhead_s": 0.0}
    for n, v in zip(names, x, strict=True):
        p[n] = math.exp(v) if SCALE[n] is None else max(float(v), 0.0) * SCALE[n]
    return p


def loss(rows: list[dict[str, str]], kind: str, params: dict[str, float], accepted: dict[str, float]) -> tuple[
        float, np.ndarray]:
    terms = []
    apes = []
    for r in rows:
        res = predict_row(r, calibration={kind: params}, accepted=accepted)
        if res.ape is not None and res.predicted and res.measured and res.predicted > 0:
            terms.append(abs(math.log(res.predicted / res.measured)))
            apes.append(res.ape)
        elif res.category in ("rate", "max_load", "static", "speculative") and res.skipped and \
                "overloaded" in res.skipped:
            terms.append(SKIP_PENALTY)
    return (float(np.mean(terms)) if terms else math.inf), np.array(apes)


def fit_kind(rows: list[dict[str, str]], kind: str, accepted: dict[str, float], maxiter: int) -> dict:
    from scipy.optimize import minimize

    names = FIT[kind]
    x0 = np.array([START[n] for n in names])
    simplex = [x0] + [x0 + np.eye(len(names))[i] * STEP[n] for i, n in enumerate(names)]
    base, _ = loss(rows, kind, _unpack(np.array([0.0 if SCALE[n] is None else 0.0 for n in names]), names), accepted)

    def objective(x: np.ndarray) -> float:
        p = _unpack(x, names)
        prior = math.log(p["compute_derate"]) ** 2
        return loss(rows, kind, p, accepted)[0] + PRIOR_WEIGHT * prior

    best = minimize(objective, x0=x0, method="Nelder-Mead",
                    options={"xatol": 1e-2, "fatol": 1e-4, "maxiter": maxiter, "initial_simplex": np.array(simplex)})
    params = _unpack(best.x, names)
    final, apes = loss(rows, kind, params, accepted)
    out = {k: float(f"{params[k]:.4g}") for k in names}
    return {"params": out, "rows": int(apes.size), "mean_abs_log_before": round(base, 4),
            "mean_abs_log_after": round(final, 4), "median_ape_pct": round(float(np.median(apes)) * 100, 1),
            "p90_ape_pct": round(float(np.percentile(apes, 90)) * 100, 1), "evaluations": int(best.nfev)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "infer-measured.csv"))
    ap.add_argument("--out", default=str(REPO / "src" / "paraplan" / "catalog" / "curves" / "inference.yaml"))
    ap.add_argument("--maxiter", type=int, default=45, help="Nelder-Mead iterations per engine kind")
    ap.add_argument("--kinds", default=",".join(FIT))
    args = ap.parse_args()
    all_rows = read_rows(args.data)
    accepted = accepted_tokens(all_rows)
    by_kind: dict[str, list[dict[str, str]]] = {}
    for r in all_rows:
        by_kind.setdefault(engine_kind(r), []).append(r)
    engines: dict[str, dict] = {}
    report: dict[str, dict] = {}
    for kind in args.kinds.split(","):
        rows = by_kind.get(kind, [])
        if len(rows) < MIN_ROWS:
            print(f"{kind}: {len(rows)} rows, not fitted")
            continue
        t0 = time.time()
        res = fit_kind(rows, kind, accepted, args.maxiter)
        engines[kind] = res["params"]
        report[kind] = {k: v for k, v in res.items() if k != "params"}
        print(f"{kind}: {res} ({time.time() - t0:.0f} s)", flush=True)
    # unknown engines (and vLLM >= 0.6, SGLang) run decode under CUDA graphs with the scheduler overlapped, like
    # TensorRT-LLM: they default to the compiled-engine (trtllm) values
    default = dict(engines.get("trtllm", {}))
    doc = {
        "fitted": dt.date.today().isoformat(),
        "method": "scripts/fit_infer.py: Nelder-Mead on mean |log(pred/measured)| over each engine kind's rows "
                  f"(a row the model calls overloaded costs log 2; weak prior on the derate), <= {args.maxiter} "
                  "iterations; default = the trtllm (compiled engine) values",
        "data": Path(args.data).name,
        "parameters": {
            "step_overhead_s": "host/launch time per iteration",
            "layer_overhead_s": "launch time per layer per iteration (eager frameworks)",
            "seq_overhead_s": "host time per sequence per iteration (Python schedulers)",
            "compute_derate": "multiplies GEMM and attention kernel time",
            "spec_step_overhead_s": "host work per speculative step (eager frameworks)",
        },
        "engines": {**engines, "default": default},
        "fit": report,
    }
    header = "# Generated by scripts/fit_infer.py; do not edit by hand.\n"
    Path(args.out).write_text(header + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
