"""Parallel training strategies: one typed :class:`Strategy`, or columns of many (:class:`StrategyArrays`).

The cost functions in :mod:`paraplan.cost` and :mod:`paraplan.train` only see :class:`StrategyArrays`
(NumPy columns), so one call prices one strategy or a million. Legality rules are evaluated the same
way (:func:`legality_masks`): the single-strategy check raises the first rule a strategy breaks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import InvalidStrategyError
from .specs import ClusterSpec, ModelSpec

Schedule = Literal["gpipe", "1f1b", "interleaved", "zero-bubble"]
Recompute = Literal["none", "selective", "full"]
Precision = Literal["bf16", "fp16", "fp8", "fp32"]
Optimizer = Literal["adamw", "adam", "sgd"]

SCHEDULES: tuple[str, ...] = ("gpipe", "1f1b", "interleaved", "zero-bubble")
RECOMPUTES: tuple[str, ...] = ("none", "selective", "full")
PRECISIONS: tuple[str, ...] = ("bf16", "fp16", "fp8", "fp32")
OPTIMIZERS: tuple[str, ...] = ("adamw", "adam", "sgd")


class Strategy(BaseModel):
    """How one training step is laid out on the cluster.

    ``zero`` is the ZeRO stage of the data-parallel group (FSDP FULL_SHARD = 3, SHARD_GRAD_OP = 2,
    Megatron's distributed optimizer = 1). ``hsdp`` shards within a node and replicates across nodes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    dp: int = Field(1, ge=1)
    cp: int = Field(1, ge=1)
    ep: int = Field(1, ge=1)
    sp: bool = False
    vpp: int = Field(1, ge=1)  # virtual pipeline stages per rank (interleaved schedule)
    schedule: Schedule = "1f1b"
    micro_batch: int = Field(1, ge=1)  # sequences per micro-batch per data-parallel rank
    global_batch: int = Field(1, ge=1)  # sequences per optimizer step
    zero: int = Field(0, ge=0, le=3)
    hsdp: bool = False
    recompute: Recompute = "none"
    precision: Precision = "bf16"
    optimizer: Optimizer = "adamw"

    @property
    def n_accelerators(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    @property
    def grad_accum(self) -> int:
        return max(self.global_batch // (self.micro_batch * self.dp), 1)

    def to_arrays(self) -> StrategyArrays:
        return StrategyArrays.from_strategies([self])


@dataclass(frozen=True)
class StrategyArrays:
    """Columns of strategies. Categorical fields are integer codes into the tuples above."""

    tp: np.ndarray
    pp: np.ndarray
    dp: np.ndarray
    cp: np.ndarray
    ep: np.ndarray
    sp: np.ndarray  # bool
    vpp: np.ndarray
    schedule: np.ndarray  # index into SCHEDULES
    micro_batch: np.ndarray
    global_batch: np.ndarray
    zero: np.ndarray
    hsdp: np.ndarray  # bool
    recompute: np.ndarray  # index into RECOMPUTES
    precision: np.ndarray  # index into PRECISIONS
    optimizer: np.ndarray  # index into OPTIMIZERS

    @classmethod
    def from_strategies(cls, strategies: list[Strategy]) -> StrategyArrays:
        cols: dict[str, np.ndarray] = {}
        for f in fields(cls):
            vals = [getattr(s, f.name) for s in strategies]
            if f.name == "schedule":
                cols[f.name] = np.array([SCHEDULES.index(v) for v in vals], dtype=np.int8)
            elif f.name == "recompute":
                cols[f.name] = np.array([RECOMPUTES.index(v) for v in vals], dtype=np.int8)
            elif f.name == "precision":
                cols[f.name] = np.array([PRECISIONS.index(v) for v in vals], dtype=np.int8)
            elif f.name == "optimizer":
                cols[f.name] = np.array([OPTIMIZERS.index(v) for v in vals], dtype=np.int8)
            elif f.name in ("sp", "hsdp"):
                cols[f.name] = np.array(vals, dtype=bool)
            else:
                cols[f.name] = np.array(vals, dtype=np.int64)
        return cls(**cols)

    @classmethod
    def from_columns(cls, **cols: np.ndarray | int | bool) -> StrategyArrays:
        """Broadcast scalar or array columns (codes for categorical fields) to one length."""
        defaults = {"tp": 1, "pp": 1, "dp": 1, "cp": 1, "ep": 1, "sp": False, "vpp": 1, "schedule": 1,
                    "micro_batch": 1, "global_batch": 1, "zero": 0, "hsdp": False, "recompute": 0,
                    "precision": 0, "optimizer": 0}
        merged = {**defaults, **cols}
        arrays = np.broadcast_arrays(*[np.asarray(merged[f.name]) for f in fields(cls)])
        return cls(**{f.name: np.ascontiguousarray(a) for f, a in zip(fields(cls), arrays, strict=True)})

    def __len__(self) -> int:
        return int(self.tp.shape[0]) if self.tp.ndim else 1

    def take(self, idx: np.ndarray | int) -> StrategyArrays:
        return StrategyArrays(**{f.name: np.atleast_1d(getattr(self, f.name)[idx]) for f in fields(self)})

    def strategy(self, i: int = 0) -> Strategy:
        g = {f.name: getattr(self, f.name)[i] for f in fields(self)}
        return Strategy(
            tp=int(g["tp"]), pp=int(g["pp"]), dp=int(g["dp"]), cp=int(g["cp"]), ep=int(g["ep"]),
            sp=bool(g["sp"]), vpp=int(g["vpp"]), schedule=SCHEDULES[int(g["schedule"])],  # type: ignore[arg-type]
            micro_batch=int(g["micro_batch"]), global_batch=int(g["global_batch"]), zero=int(g["zero"]),
            hsdp=bool(g["hsdp"]), recompute=RECOMPUTES[int(g["recompute"])],  # type: ignore[arg-type]
            precision=PRECISIONS[int(g["precision"])],  # type: ignore[arg-type]
            optimizer=OPTIMIZERS[int(g["optimizer"])],  # type: ignore[arg-type]
        )


#: Rule name -> human explanation. The planner reports rejections by these names.
RULES: dict[str, str] = {
    "accelerator_count": "tp * pp * dp * cp must equal the number of accelerators",
    "tp_divides_heads": "tp must divide the attention heads",
    "tp_divides_kv_heads": "tp must divide the KV heads (or be a multiple of them, replicating KV)",
    "tp_in_scaleup_domain": "tp * cp should fit inside one scale-up domain",
    "pp_le_layers": "pp must not exceed the number of layers",
    "pp_divides_layers": "pp * vpp must divide the number of layers",
    "vpp_needs_interleaved": "vpp > 1 needs the interleaved schedule (and pp > 1)",
    "ep_divides_experts": "ep must divide the number of experts",
    "ep_needs_moe": "ep > 1 needs a mixture-of-experts model",
    "ep_divides_tp_dp_cp": "ep must divide tp * dp * cp (expert-parallel ranks fold over the TP/DP/CP ranks)",
    "cp_divides_seq": "2 * cp must divide the sequence length",
    "batch_divisible": "global batch must be a multiple of micro_batch * dp",
    "sp_needs_tp": "sequence parallelism needs tp > 1",
    "zero_needs_dp": "ZeRO stage > 0 needs dp > 1",
}


def legality_masks(model: ModelSpec, cluster: ClusterSpec | None, s: StrategyArrays, seq_len: int,
                   *, uneven_pp: bool = False, tp_across_nodes: bool = False) -> dict[str, np.ndarray]:
    """For each rule, a boolean mask of the strategies that BREAK it (array-first)."""
    L = model.n_layers
    heads, kv = model.n_heads, model.kv_heads
    out: dict[str, np.ndarray] = {}
    out["tp_divides_heads"] = heads % s.tp != 0
    out["tp_divides_kv_heads"] = (kv % s.tp != 0) & (s.tp % kv != 0)
    out["pp_le_layers"] = s.pp > L
    if not uneven_pp:
        out["pp_divides_layers"] = L % (s.pp * s.vpp) != 0
    out["vpp_needs_interleaved"] = (s.vpp > 1) & ((s.schedule != SCHEDULES.index("interleaved")) | (s.pp == 1))
    if model.moe is not None:
        out["ep_divides_experts"] = model.moe.n_experts % s.ep != 0
        out["ep_divides_tp_dp_cp"] = (s.tp * s.dp * s.cp) % s.ep != 0
    else:
        out["ep_needs_moe"] = s.ep > 1
    out["cp_divides_seq"] = (s.cp > 1) & (seq_len % (2 * s.cp) != 0)
    out["batch_divisible"] = s.global_batch % (s.micro_batch * s.dp) != 0
    out["sp_needs_tp"] = s.sp & (s.tp == 1)
    out["zero_needs_dp"] = (s.zero > 0) & (s.dp == 1)
    if cluster is not None:  # cluster rules last: a model rule is the more specific complaint
        out["accelerator_count"] = s.tp * s.pp * s.dp * s.cp != cluster.n_accelerators
        if not tp_across_nodes:
            out["tp_in_scaleup_domain"] = s.tp * s.cp > max(cluster.domain, 1)
    return out


def check_strategy(model: ModelSpec, cluster: ClusterSpec | None, strategy: Strategy, seq_len: int,
                   **kw: bool) -> None:
    """Raise :class:`InvalidStrategyError` naming the first rule ``strategy`` breaks."""
    masks = legality_masks(model, cluster, strategy.to_arrays(), seq_len, **kw)
    vals = {
        "accelerator_count": f"tp*pp*dp*cp = {strategy.tp}*{strategy.pp}*{strategy.dp}*{strategy.cp} = "
        f"{strategy.n_accelerators}, cluster has {cluster.n_accelerators if cluster else '?'}",
        "tp_divides_heads": f"tp={strategy.tp}, heads={model.n_heads}",
        "tp_divides_kv_heads": f"tp={strategy.tp}, kv_heads={model.kv_heads}",
        "tp_in_scaleup_domain": f"tp*cp={strategy.tp * strategy.cp}, "
        f"scale-up domain={cluster.domain if cluster else '?'}",
        "pp_le_layers": f"pp={strategy.pp}, layers={model.n_layers}",
        "pp_divides_layers": f"pp*vpp={strategy.pp * strategy.vpp}, layers={model.n_layers}",
        "vpp_needs_interleaved": f"vpp={strategy.vpp}, schedule={strategy.schedule}, pp={strategy.pp}",
        "ep_divides_experts": f"ep={strategy.ep}, experts={model.moe.n_experts if model.moe else 0}",
        "ep_needs_moe": f"ep={strategy.ep}, model {model.name} has no experts",
        "ep_divides_tp_dp_cp": f"ep={strategy.ep}, tp*dp*cp={strategy.tp * strategy.dp * strategy.cp}",
        "cp_divides_seq": f"cp={strategy.cp}, seq_len={seq_len}",
        "batch_divisible": f"global_batch={strategy.global_batch}, micro_batch*dp="
        f"{strategy.micro_batch}*{strategy.dp}={strategy.micro_batch * strategy.dp}",
        "sp_needs_tp": "sp=True, tp=1",
        "zero_needs_dp": f"zero={strategy.zero}, dp=1",
    }
    broken = [rule for rule, mask in masks.items() if bool(np.asarray(mask).reshape(-1)[0])]
    if broken:
        first = broken[0]
        more = f"; also breaks: {', '.join(broken[1:])}" if len(broken) > 1 else ""
        raise InvalidStrategyError(first, f"{RULES[first]} ({vals[first]}){more}")
