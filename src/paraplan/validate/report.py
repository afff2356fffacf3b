"""What every validation report shares: one row's result and the error statistics over rows."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class RowResultBase:
    """One measured row: the metric compared, both values, the absolute percentage error, or why skipped."""

    row_id: str
    model: str = ""
    metric: str = ""
    measured: float | None = None
    predicted: float | None = None
    ape: float | None = None
    skipped: str | None = None
    assumptions: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ape_stats(apes: list[float] | np.ndarray, prefix: str = "") -> dict[str, float | None]:
    """Median, 90th percentile and mean of absolute percentage errors (``None`` when there are none)."""
    a = np.asarray(apes, dtype=float)
    have = a.size > 0
    return {
        f"{prefix}median_ape": float(np.median(a)) if have else None,
        f"{prefix}p90_ape": float(np.percentile(a, 90)) if have else None,
        f"{prefix}mean_ape": float(np.mean(a)) if have else None,
    }


# ------------------------------------------------------------------ CSV cell parsing
def _num(x: str | None) -> float | None:
    """The leading number of a CSV cell ('312 (dense)' -> 312.0), or None."""
    if x is None:
        return None
    m = re.match(r"\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)", x)
    return float(m.group(1)) if m else None


def _int(x: str | None) -> int | None:
    v = _num(x)
    return int(v) if v is not None and v == int(v) else None
