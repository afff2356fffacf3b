"""Serving simulator: request streams (:mod:`.workload`) and the iteration-level discrete-event engine
(:mod:`.engine`), priced by the inference estimator's step-time function."""

from __future__ import annotations

from .engine import SCHEDULERS, SimConfig, SimResult, SimulationError, simulate_serving
from .workload import PRESETS, Requests, WorkloadError, make_requests, read_trace, sample_lengths

__all__ = ["SCHEDULERS", "PRESETS", "Requests", "SimConfig", "SimResult", "SimulationError", "WorkloadError",
           "make_requests", "read_trace", "sample_lengths", "simulate_serving"]
