"""The named-component breakdowns every estimate carries: components that add up to the total."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TimeBreakdown(BaseModel):
    """Seconds per named component; the components add up to ``total_s``."""

    model_config = ConfigDict(frozen=True)
    components_s: dict[str, float]
    total_s: float


class MemoryBreakdown(BaseModel):
    """Bytes per named component per accelerator; they add up to ``total_bytes``, compared with the capacity."""

    model_config = ConfigDict(frozen=True)
    components_bytes: dict[str, float]
    total_bytes: float
    capacity_bytes: float
    fits: bool
    overflow_component: str | None = None
    overflow_bytes: float = 0.0
