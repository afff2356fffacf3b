"""``paraplan calibrate --from-runs runs.csv``: the shared training parameters of the user's own cluster, fitted on
the user's measured steps (the columns of ``train-measured.csv``), with leave-one-out error and uncertainty.

Every row is turned into a configuration exactly as ``paraplan validate train`` does
(:func:`paraplan.validate.train.row_config`, same assumptions for missing knobs) and predicted through the
unchanged estimator; its metric (tokens/s per GPU, step time, TFLOP/s or MFU, in the row's own FLOP convention) is
``a x step_time`` or ``a / step_time`` with ``a`` taken from :func:`paraplan.validate.train.predict_row`, so a fit
only re-evaluates the step time. Rows are grouped by accelerator family; each family fits the parameters its row
count supports (:func:`paraplan.calibrate.shared.training_names`), starting from and falling back to the catalog's
values (``catalog/curves/training.yaml``). No torch needed (scipy is).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParaplanError
from ..rules import get_framework
from ..train import evaluate_training, training_params
from ..validate.train import predict_row, read_rows, row_config
from .device import CalibrationError
from .profile import FORMAT, TRAINING_KEYS
from .shared import FitResult, Row, fit_with_cv, training_names


def catalog_params(family: str) -> dict[str, float]:
    """The catalog's shared training parameters for a family (its own fit, else ``default``)."""
    fams = training_params().get("families", {})
    p = fams.get(family) or fams.get("default") or {}
    out = {"compute_derate": 1.0, "attention_derate": 1.0, "layer_overhead_s": 0.0, "step_overhead_s": 0.0}
    out.update({k: float(v) for k, v in p.items() if k in out})
    return out


def _row(raw: dict[str, str]) -> tuple[Row | None, str, str | None]:
    """(fit row or None, family, why skipped)."""
    rid = raw.get("row_id", "") or "?"
    if raw.get("config_complete", "").strip().lower() == "no":
        return None, "", "config_complete = no (headline number only)"
    res0 = predict_row(raw)
    if res0.predicted is None or res0.measured is None or res0.ape is None:
        return None, "", res0.skipped or "not predictable"
    try:
        model, cluster, strategy, workload, fw_name, _ = row_config(raw)
    except (ParaplanError, ValueError) as exc:  # pragma: no cover - predict_row succeeded on the same row
        return None, "", str(exc)
    fw = get_framework(fw_name)
    arrays = strategy.to_arrays()
    family = cluster.accelerator.family
    base = catalog_params(family)

    def step(params: dict[str, float]) -> float:
        return float(evaluate_training(model, cluster, arrays, workload, fw, calibration=params)["step_time_s"][0])

    direction = 1 if res0.metric == "step_time_s" else -1
    scale = res0.predicted / step(base) ** direction

    def predict(params: dict[str, float]) -> float:
        return scale * step(params) ** direction

    return Row(row_id=rid, measured=float(res0.measured), predict=predict, direction=direction, group=family,
               info={"metric": res0.metric, "model": res0.model, "gpu": res0.gpu}), family, None


@dataclass
class RunsFit:
    data: str
    families: dict[str, FitResult]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def training_families(self) -> dict[str, dict[str, float]]:
        """Full parameter sets per family: the fitted values, the catalog's for the rest."""
        return {fam: {**catalog_params(fam), **r.params} for fam, r in self.families.items()}

    def to_profile(self) -> dict[str, Any]:
        return {"calibration": {
            "format": FORMAT, "kind": "runs", "created": dt.datetime.now().isoformat(timespec="seconds"),
            "data": self.data, "training_families": self.training_families(),
            "fit": {fam: r.to_json() for fam, r in self.families.items()}, "skipped": self.skipped,
            "method": "paraplan.calibrate.runs: Nelder-Mead on mean |log(pred/measured)| + weak prior on the derates "
                      "(scripts/fit_training.py's approach), per accelerator family; leave-one-out (k-fold above "
                      "30 rows) error; jackknife standard errors",
        }}


def fit_runs(data: str | Path, *, names: tuple[str, ...] | None = None, cv: bool = True,
             progress: Callable[[str, int, int], None] | None = None) -> RunsFit:
    """Fit every accelerator family present in ``data``. ``names``: the parameters to fit (default: what each
    family's row count supports)."""
    path = Path(data)
    if not path.is_file():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    try:
        raw_rows = read_rows(path)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CalibrationError(f"{path}: not a readable CSV ({exc})") from None
    if not raw_rows:
        raise CalibrationError(f"{path}: no rows")
    missing = {"gpu_type", "gpu_count"} - set(raw_rows[0])
    if missing:
        raise CalibrationError(f"{path}: missing column(s) {', '.join(sorted(missing))} (expected the columns of "
                               "train-measured.csv)")
    if names is not None:
        bad = [n for n in names if n not in TRAINING_KEYS]
        if bad:
            raise CalibrationError(f"unknown parameter(s) {', '.join(bad)}; choose from {', '.join(TRAINING_KEYS)}")
    by_fam: dict[str, list[Row]] = defaultdict(list)
    skipped = []
    for raw in raw_rows:
        row, fam, why = _row(raw)
        if row is None:
            skipped.append({"row_id": raw.get("row_id", "?"), "reason": why or "?"})
        else:
            by_fam[fam].append(row)
    if not by_fam:
        raise CalibrationError(f"{path}: none of the {len(raw_rows)} rows can be predicted "
                               f"(first reason: {skipped[0]['reason'] if skipped else '?'})")
    fams: dict[str, FitResult] = {}
    for fam, rows in sorted(by_fam.items()):
        use = names or training_names(len(rows))
        base = catalog_params(fam)
        fixed = {k: v for k, v in base.items() if k not in use}
        tick = (lambda d, n, fam=fam: progress(f"fit {fam} ({len(by_fam[fam])} rows)", d, n)) if progress else None
        fams[fam] = fit_with_cv(rows, use, fixed, baseline_params=base, cv=cv, progress=tick)
    return RunsFit(data=str(path), families=fams, skipped=skipped)
