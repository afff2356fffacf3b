"""Fit the shared parameters of an estimator from measured steps, with cross-validated error and uncertainty.

The approach of ``scripts/fit_training.py``, importable: the loss is the mean absolute log error of the
predicted metric over the rows plus a weak prior pulling derates towards 1 (so a parameter the rows cannot
identify stays neutral instead of drifting), minimised by Nelder-Mead. Which parameters are fitted depends on
how many rows there are (:func:`training_names`). Every prediction goes through the existing estimator: a row
only knows how to predict its metric for a given parameter set.

Reported with the fit:

* in-sample APE of the fitted parameters (and of the starting parameters, the baseline);
* leave-one-out APE: each row predicted by parameters fitted on the others (k-fold above ``MAX_LOO`` rows);
* uncertainty: the jackknife standard error of each fitted parameter from the leave-one-out fits (with
  k-fold, the spread of the fold fits).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .device import CalibrationError

PRIOR_WEIGHT = 0.02
MAX_LOO = 30
K_FOLDS = 10
DERATES = ("compute_derate", "attention_derate")
OVERHEADS = ("layer_overhead_s", "step_overhead_s", "seq_overhead_s")
NEUTRAL = {"compute_derate": 1.0, "attention_derate": 1.0, "layer_overhead_s": 0.0, "step_overhead_s": 0.0,
           "seq_overhead_s": 0.0}


@dataclass
class Row:
    """One measured value and how to predict it. ``direction`` is +1 when the metric grows with time (a step
    time), -1 when it shrinks (tokens/s, TFLOP/s, MFU)."""

    row_id: str
    measured: float
    predict: Callable[[dict[str, float]], float]
    direction: int = 1
    group: str = ""
    info: dict[str, Any] = field(default_factory=dict)


def training_names(n_rows: int) -> tuple[str, ...]:
    """Parameters a family's rows can support (``scripts/fit_training.py``'s rule, plus the per-layer overhead
    from 8 rows): < 8 rows: compute_derate; 8-19: + layer_overhead_s; >= 20: + attention_derate."""
    if n_rows >= 20:
        return ("compute_derate", "attention_derate", "layer_overhead_s")
    if n_rows >= 8:
        return ("compute_derate", "layer_overhead_s")
    return ("compute_derate",)


def _ape(pred: float, meas: float) -> float:
    return abs(pred - meas) / meas if meas else math.nan


def _finite(x: float) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def _loss(rows: Sequence[Row], p: dict[str, float], names: Sequence[str], prior_weight: float) -> float:
    errs = []
    for r in rows:
        v = r.predict(p)
        errs.append(abs(math.log(v / r.measured)) if _finite(v) else 10.0)
    prior = sum(math.log(p[n]) ** 2 for n in names if n in DERATES)
    return float(np.mean(errs)) + prior_weight * prior


def _to_params(x: np.ndarray, names: Sequence[str], fixed: dict[str, float]) -> dict[str, float]:
    p = {**NEUTRAL, **fixed}
    for n, v in zip(names, x, strict=True):
        p[n] = math.exp(min(float(v), 50.0))
    return p


def _linear_start(rows: Sequence[Row], names: Sequence[str], fixed: dict[str, float]) -> dict[str, float]:
    """A starting point from a bounded linear least-squares fit of the relative error, the predictions linearised
    around the neutral parameters (exact for single-process steps, whose time is linear in the overheads and the
    compute derate)."""
    try:
        from scipy.optimize import lsq_linear
    except ImportError:  # pragma: no cover
        raise CalibrationError("fitting needs scipy: pip install 'paraplan[calibrate]'") from None
    base = {**NEUTRAL, **fixed}
    steps = {n: (0.1 if n in DERATES else 1e-4) for n in names}
    A, b = [], []
    for r in rows:
        y0 = r.predict(base) ** r.direction
        row = []
        for n in names:
            y1 = r.predict({**base, n: base[n] + steps[n]}) ** r.direction
            row.append((y1 - y0) / steps[n])
        ym = r.measured ** r.direction
        A.append([a / ym for a in row])
        b.append(1.0 - y0 / ym + sum(a * base[n] for a, n in zip(row, names, strict=True)) / ym)
    lo = [0.05 if n in DERATES else 0.0 for n in names]
    hi = [20.0 if n in DERATES else 10.0 for n in names]
    sol = lsq_linear(np.array(A), np.array(b), bounds=(lo, hi))
    return {**base, **{n: float(v) for n, v in zip(names, sol.x, strict=True)}}


def fit_params(rows: Sequence[Row], names: Sequence[str], fixed: dict[str, float] | None = None,
               prior_weight: float = PRIOR_WEIGHT, start: dict[str, float] | None = None) -> dict[str, float]:
    """Minimise mean |log(pred/measured)| + prior over ``names`` (others from ``fixed``, then neutral). ``start``:
    a nearby solution (the full fit, for a cross-validation fold) instead of the linearised one."""
    if not rows:
        raise CalibrationError("no rows to fit")
    try:
        from scipy.optimize import minimize
    except ImportError:  # pragma: no cover
        raise CalibrationError("fitting needs scipy: pip install 'paraplan[calibrate]'") from None
    fixed = dict(fixed or {})
    names = tuple(names)
    near = start is not None
    start = {**NEUTRAL, **fixed, **start} if start is not None else _linear_start(rows, names, fixed)
    floor = {n: (1e-3 if n in DERATES else 1e-7) for n in names}
    x0 = np.array([math.log(max(start[n], floor[n])) for n in names])
    step = {True: (0.05, 0.3), False: (0.2, 1.0)}[near]
    simplex = [x0] + [x0 + np.eye(len(names))[i] * (step[0] if n in DERATES else step[1])
                      for i, n in enumerate(names)]
    res = minimize(lambda x: _loss(rows, _to_params(x, names, fixed), names, prior_weight), x0, method="Nelder-Mead",
                   options={"xatol": 1e-3, "fatol": 1e-5, "maxiter": 80 * len(names),
                            "initial_simplex": np.array(simplex)})
    p = _to_params(res.x, names, fixed)
    for n in names:  # an overhead driven to numerical zero is zero
        if n in OVERHEADS and p[n] < 1e-9:
            p[n] = 0.0
    return {k: float(f"{v:.6g}") for k, v in p.items() if k in names or k in fixed}


@dataclass
class FitResult:
    params: dict[str, float]
    names: tuple[str, ...]
    n_rows: int
    in_sample: dict[str, Any]
    baseline: dict[str, Any]
    cv: dict[str, Any] | None
    uncertainty: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"params": self.params, "fitted": list(self.names), "n_rows": self.n_rows,
                "in_sample": self.in_sample, "baseline": self.baseline, "cross_validation": self.cv,
                "uncertainty_se": self.uncertainty}


def _stats(apes: Sequence[float]) -> dict[str, Any]:
    a = np.array([x for x in apes if math.isfinite(x)], dtype=float)
    if not a.size:
        return {"median_ape": None, "p90_ape": None, "n": 0}
    return {"median_ape": round(float(np.median(a)), 5), "p90_ape": round(float(np.percentile(a, 90)), 5),
            "n": int(a.size)}


def linearize(rows: Sequence[Row], names: Sequence[str], fixed: dict[str, float] | None = None,
              tol: float = 1e-7) -> list[Row]:
    """Rows whose prediction (its time-like power, ``value ** direction``) is exactly linear in ``names`` (a
    single-process step: compute derate, per-layer and per-step overheads) get an equivalent closed-form ``predict``
    (checked at two further parameter points, else the row is kept as it is): the same fit, far fewer estimator
    calls."""
    base = {**NEUTRAL, **(fixed or {})}
    unit = {n: (1.0 if n in DERATES else 1e-3) for n in names}
    probes = [{**base, **{n: base[n] + unit[n] * f for n, f in zip(names, fs, strict=False)}}
              for fs in ((0.37, 2.1, 0.83, 1.3), (1.9, 0.4, 3.1, 0.2))]
    out = []
    for r in rows:
        try:
            y0 = r.predict(base) ** r.direction
            grad = {n: (r.predict({**base, n: base[n] + unit[n]}) ** r.direction - y0) / unit[n] for n in names}

            def lin(p: dict[str, float], y0: float = y0, grad: dict[str, float] = grad) -> float:
                return y0 + sum(g * (p[n] - base[n]) for n, g in grad.items())

            ok = all(abs(lin(q) - r.predict(q) ** r.direction) <= tol * abs(r.predict(q) ** r.direction)
                     for q in probes)
        except (ValueError, ZeroDivisionError, OverflowError):
            ok = False
        if ok:
            out.append(Row(row_id=r.row_id, measured=r.measured, direction=r.direction, group=r.group, info=r.info,
                           predict=lambda p, lin=lin, d=r.direction: lin({**base, **p}) ** d))
        else:
            out.append(r)
    return out


def fit_with_cv(rows: Sequence[Row], names: Sequence[str], fixed: dict[str, float] | None = None,
                baseline_params: dict[str, float] | None = None, cv: bool = True,
                prior_weight: float = PRIOR_WEIGHT,
                progress: Callable[[int, int], None] | None = None) -> FitResult:
    """Fit, then cross-validate: leave-one-out up to ``MAX_LOO`` rows, ``K_FOLDS``-fold above. ``progress(done,
    total)`` is called after the fit and after each fold."""
    names = tuple(names)
    fixed = dict(fixed or {})
    rows = linearize(rows, names, fixed)
    params = fit_params(rows, names, fixed, prior_weight)
    n_steps = 1 + (len(rows) if len(rows) <= MAX_LOO else K_FOLDS) * (cv and len(rows) >= 2)
    if progress:
        progress(1, n_steps)
    ins = [_ape(r.predict(params), r.measured) for r in rows]
    base_p = {**NEUTRAL, **fixed, **(baseline_params or {})}
    base = [_ape(r.predict(base_p), r.measured) for r in rows]
    result_cv: dict[str, Any] | None = None
    unc: dict[str, float] = {}
    if cv and len(rows) >= 2:
        n = len(rows)
        if n <= MAX_LOO:
            folds = [[i] for i in range(n)]
            method = "leave-one-out"
        else:
            order = np.random.default_rng(0).permutation(n)
            folds = [sorted(int(i) for i in order[k::K_FOLDS]) for k in range(K_FOLDS)]
            method = f"{K_FOLDS}-fold"
        preds: dict[int, float] = {}
        fits = []
        for held in folds:
            train = [r for i, r in enumerate(rows) if i not in held]
            p = fit_params(train, names, fixed, prior_weight)
            fits.append(p)
            for i in held:
                preds[i] = rows[i].predict(p)
            if progress:
                progress(len(fits) + 1, n_steps)
        cv_apes = [_ape(preds[i], rows[i].measured) for i in range(n)]
        result_cv = {"method": method, **_stats(cv_apes),
                     "rows": [{"row_id": rows[i].row_id, "measured": rows[i].measured, "predicted": preds[i],
                               "ape": cv_apes[i]} for i in range(n)]}
        for nm in names:
            vals = np.array([f[nm] for f in fits])
            if method == "leave-one-out":  # jackknife standard error
                se = math.sqrt((n - 1) / n * float(np.sum((vals - vals.mean()) ** 2)))
            else:
                se = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            unc[nm] = float(f"{se:.3g}")
    return FitResult(params=params, names=names, n_rows=len(rows),
                     in_sample={**_stats(ins), "rows": [{"row_id": r.row_id, "measured": r.measured,
                                                         "predicted": r.predict(params), "ape": a}
                                                        for r, a in zip(rows, ins, strict=True)]},
                     baseline={"params": {k: v for k, v in base_p.items() if k in names}, **_stats(base)},
                     cv=result_cv, uncertainty=unc)


def select_fit(rows: Sequence[Row], candidates: Sequence[Sequence[str]], fixed: dict[str, float] | None = None,
               prior_weight: float = PRIOR_WEIGHT) -> tuple[FitResult, list[dict[str, Any]]]:
    """Fit every candidate parameter set and keep the one with the lowest cross-validated median APE (the fewer
    parameters on a tie): model selection on the rows themselves, never on held-out validation data. Returns the
    chosen fit and every candidate's cross-validated error."""
    results = [fit_with_cv(rows, tuple(c), fixed, prior_weight=prior_weight) for c in candidates]

    def score(r: FitResult) -> tuple[float, int]:
        cv = (r.cv or {}).get("median_ape")
        return (cv if cv is not None else math.inf, len(r.names))

    best = min(results, key=score)
    table = [{"fitted": list(r.names), "cv_median_ape": (r.cv or {}).get("median_ape"),
              "cv_p90_ape": (r.cv or {}).get("p90_ape"), "chosen": r is best} for r in results]
    return best, table
