"""Which assumption moves a training estimate most: the step time and throughput when one input is made worse.

An estimate rests on a handful of inputs that are each uncertain: the accelerator's dense peak (clocks under
sustained power), its memory bandwidth, the bandwidth of the scale-up and scale-out links, the host side
(offload), and the shared training parameters fitted on published runs (``compute_derate``,
``attention_derate``). :func:`sensitivity` makes each one ``delta`` worse in turn (10 % by default: peaks and
bandwidths times ``1 - delta``, derates times ``1 + delta``), prices the same strategy again with
:func:`paraplan.train.estimate_training`, and ranks the inputs by how much the step time grows, with the time
components that move. An input the step does not depend on (no offload, one node) moves nothing and says so.
Throughput changes are also MFU changes against the nominal (spec-sheet) peak, which is what users compare.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .specs import ClusterSpec, ModelSpec
from .strategy import Strategy
from .train import TIME_COMPONENTS, Layer, TrainingEstimate, Workload, estimate_training, family_params

Calibration = dict[str, float]
Perturb = Callable[[ClusterSpec, Calibration, float], tuple[ClusterSpec, Calibration]]


def _acc(cluster: ClusterSpec, **update: Any) -> ClusterSpec:
    return cluster.model_copy(update={"accelerator": cluster.accelerator.model_copy(update=update)})


def _compute(c: ClusterSpec, cal: Calibration, d: float) -> tuple[ClusterSpec, Calibration]:
    return _acc(c, peak_flops={k: v * (1.0 - d) for k, v in c.accelerator.peak_flops.items()}), cal


def _hbm(c: ClusterSpec, cal: Calibration, d: float) -> tuple[ClusterSpec, Calibration]:
    return _acc(c, memory_bw=c.accelerator.memory_bw * (1.0 - d)), cal


def _scaleup(c: ClusterSpec, cal: Calibration, d: float) -> tuple[ClusterSpec, Calibration]:
    return c.model_copy(update={"scaleup": c.scaleup.model_copy(update={"bw": c.scaleup.bw * (1.0 - d)})}), cal


def _scaleout(c: ClusterSpec, cal: Calibration, d: float) -> tuple[ClusterSpec, Calibration]:
    return c.model_copy(update={"scaleout": c.scaleout.model_copy(update={"bw": c.scaleout.bw * (1.0 - d)})}), cal


def _host(c: ClusterSpec, cal: Calibration, d: float) -> tuple[ClusterSpec, Calibration]:
    h = c.host_spec
    host = h.model_copy(update={"memory_bw": h.memory_bw * (1.0 - d), "nvme_bw": h.nvme_bw * (1.0 - d)})
    return _acc(c, pcie_bw=c.accelerator.pcie_bw * (1.0 - d)).model_copy(update={"host": host}), cal


def _derate(key: str) -> Perturb:
    def f(c: ClusterSpec, cal: Calibration, d: float) -> tuple[ClusterSpec, Calibration]:
        return c, {**cal, key: cal[key] * (1.0 + d)}
    return f


#: (name, what it stands for, how to make it worse, needs the fitted training parameters)
FACTORS: tuple[tuple[str, str, Perturb, bool], ...] = (
    ("compute_peak", "dense peak FLOP/s (clocks under sustained power): GEMM and attention kernels", _compute, False),
    ("memory_bandwidth", "accelerator memory bandwidth: element-wise and memory-bound kernels", _hbm, False),
    ("scaleup_bandwidth", "scale-up link bandwidth (NVLink, ...): TP, CP, EP and in-node collectives", _scaleup,
     False),
    ("scaleout_bandwidth", "scale-out network bandwidth: DP and PP traffic between nodes", _scaleout, False),
    ("host_bandwidth", "PCIe, host memory and NVMe bandwidth: offload traffic", _host, False),
    ("compute_derate", "fitted kernel-time derate (framework kernels, autograd, layouts)", _derate("compute_derate"),
     True),
    ("attention_derate", "fitted attention-kernel derate (training FlashAttention)", _derate("attention_derate"),
     True),
)


@dataclass
class SensitivityRow:
    """One input made ``delta`` worse and what the step does."""

    factor: str
    description: str
    step_time_s: float
    step_change: float  # relative change of the step time (+0.05 = 5 % longer)
    throughput_change: float  # relative change of tokens/s, i.e. of MFU against the nominal (spec-sheet) peak
    components_s: dict[str, float] = field(default_factory=dict)  # time components that moved (new - base)

    def to_json(self) -> dict[str, Any]:
        return {"factor": self.factor, "description": self.description, "step_time_s": self.step_time_s,
                "step_change": self.step_change, "throughput_change": self.throughput_change,
                "component_deltas_s": self.components_s}


@dataclass
class Sensitivity:
    """Inputs ranked by how much the step time grows when each is ``delta`` worse."""

    delta: float
    step_time_s: float
    mfu: float
    rows: list[SensitivityRow]

    @property
    def largest(self) -> SensitivityRow | None:
        return self.rows[0] if self.rows and self.rows[0].step_change > 0.0 else None

    def to_json(self) -> dict[str, Any]:
        return {"delta": self.delta, "step_time_s": self.step_time_s, "mfu": self.mfu,
                "largest": None if self.largest is None else self.largest.factor,
                "factors": [r.to_json() for r in self.rows]}

    def records(self) -> list[dict[str, Any]]:
        """One flat dict per input (pandas-friendly)."""
        return [{"factor": r.factor, "step_time_s": r.step_time_s, "step_change": r.step_change,
                 "throughput_change": r.throughput_change} for r in self.rows]


def sensitivity(model: ModelSpec, cluster: ClusterSpec, strategy: Strategy, workload: Workload | None = None, *,
                framework: str = "megatron", layer: Layer = "curves", calibration: Calibration | None = None,
                delta: float = 0.10, base: TrainingEstimate | None = None) -> Sensitivity:
    """Price ``strategy`` with each input ``delta`` worse in turn and rank the inputs by the step-time change.

    ``calibration`` (shared training parameters, e.g. from a ``paraplan calibrate`` profile) is the starting
    point for the derates; the spec layer has no fitted derates and skips them. ``base``: the estimate of the
    same plan with the same inputs when the caller has it already."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), not {delta}")
    workload = workload or Workload()
    base_cal = family_params(cluster.accelerator.family, layer, calibration)

    def price(c: ClusterSpec, cal: Calibration | None) -> TrainingEstimate:
        return estimate_training(model, c, strategy, workload, framework=framework, layer=layer, check=False,
                                 calibration=cal)

    base = base or price(cluster, calibration)
    rows = []
    for name, what, perturb, fitted in FACTORS:
        if fitted and layer == "spec" and not calibration:
            continue
        c, cal = perturb(cluster, dict(base_cal), delta)
        est = price(c, cal if fitted else calibration)
        moved = {k: est.time.components_s[k] - base.time.components_s[k] for k in TIME_COMPONENTS}
        rows.append(SensitivityRow(
            factor=name, description=what, step_time_s=est.step_time_s,
            step_change=est.step_time_s / base.step_time_s - 1.0,
            throughput_change=base.step_time_s / est.step_time_s - 1.0,
            components_s={k: v for k, v in sorted(moved.items(), key=lambda kv: -abs(kv[1])) if abs(v) > 1e-12}))
    rows.sort(key=lambda r: -r.step_change)
    return Sensitivity(delta=delta, step_time_s=base.step_time_s, mfu=base.mfu, rows=rows)
