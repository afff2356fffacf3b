"""Parallel training strategies: one typed :class:`Strategy`, or columns of many (:class:`StrategyArrays`).

The cost functions in :mod:`paraplan.cost` and :mod:`paraplan.train` only see :class:`StrategyArrays`
(NumPy columns), so one call prices one strategy or a million. Legality rules are evaluated the same
way (:func:`legality_masks`): the single-strategy check raises the first rule a strategy breaks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import InvalidStrategyError
from .specs import ClusterSpec, ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from .rules import Framework

Schedule = Literal["gpipe", "1f1b", "interleaved", "zero-bubble"]
Recompute = Literal["none", "selective", "full"]
Precision = Literal["bf16", "fp16", "fp8", "fp32"]
Optimizer = Literal["adamw", "adam", "sgd"]
OffloadTier = Literal["none", "cpu", "nvme"]

SCHEDULES: tuple[str, ...] = ("gpipe", "1f1b", "interleaved", "zero-bubble")
RECOMPUTES: tuple[str, ...] = ("none", "selective", "full")
PRECISIONS: tuple[str, ...] = ("bf16", "fp16", "fp8", "fp32")
OPTIMIZERS: tuple[str, ...] = ("adamw", "adam", "sgd")
#: offload tiers (codes 0, 1, 2 as in :mod:`paraplan.cost.offload`)
OFFLOAD_TIERS: tuple[str, ...] = ("none", "cpu", "nvme")


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
    #: optimizer states (and, from ZeRO-2, gradients) kept in host memory or on NVMe; the optimizer step runs on
    #: the CPU (ZeRO-Offload / ZeRO-Infinity, Megatron's CPU optimizer offload)
    offload: OffloadTier = "none"
    #: ZeRO-3 parameter shards kept in host memory or on NVMe, fetched for each forward/backward (ZeRO-Infinity)
    offload_params: OffloadTier = "none"

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
    offload: np.ndarray  # index into OFFLOAD_TIERS
    offload_params: np.ndarray  # index into OFFLOAD_TIERS

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
            elif f.name in ("offload", "offload_params"):
                cols[f.name] = np.array([OFFLOAD_TIERS.index(v) for v in vals], dtype=np.int8)
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
                    "precision": 0, "optimizer": 0, "offload": 0, "offload_params": 0}
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
            offload=OFFLOAD_TIERS[int(g["offload"])],  # type: ignore[arg-type]
            offload_params=OFFLOAD_TIERS[int(g["offload_params"])],  # type: ignore[arg-type]
        )


#: Rule name -> human explanation. The planner reports rejections by these names.
RULES: dict[str, str] = {
    "accelerator_count": "tp * pp * dp * cp must equal the number of accelerators",
    "tp_divides_heads": "tp must divide the attention heads",
    "tp_divides_kv_heads": "tp must divide the KV heads (or be a multiple of them, replicating KV)",
    "tp_in_scaleup_domain": "tp * cp should fit inside one scale-up domain",
    "pp_le_layers": "pp * vpp must not exceed the number of layers (each model chunk holds at least one layer)",
    "pp_divides_layers": "pp * vpp must divide the number of layers",
    "vpp_needs_interleaved": "vpp > 1 needs the interleaved schedule (and pp > 1)",
    "schedule_needs_pp": "a pipeline schedule other than 1f1b needs pp > 1 (one stage has nothing to schedule)",
    "ep_divides_experts": "ep must divide the number of experts",
    "ep_needs_moe": "ep > 1 needs a mixture-of-experts model",
    "ep_divides_tp_dp_cp": "ep must divide tp * dp * cp (expert-parallel ranks fold over the TP/DP/CP ranks)",
    "cp_divides_seq": "2 * cp must divide the sequence length",
    "batch_divisible": "global batch must be a multiple of micro_batch * dp",
    "sp_needs_tp": "sequence parallelism needs tp > 1",
    "zero_needs_dp": "ZeRO stage > 0 needs dp > 1",
    "hsdp_needs_sharding": "HSDP (hybrid sharding) needs ZeRO stage >= 2 and dp > 1",
    "offload_supported": "the framework must support offloading to that tier (its offload: data)",
    "offload_params_needs_zero3": "offloading parameters needs ZeRO stage 3 (sharded parameters fetched per layer)",
}

#: The strategy fields each rule reads (the planner prices rule counts on the sub-grid of these fields; a test
#: checks that changing any other field never changes a rule's verdict).
RULE_FIELDS: dict[str, tuple[str, ...]] = {
    "accelerator_count": ("tp", "pp", "dp", "cp"),
    "tp_divides_heads": ("tp",),
    "tp_divides_kv_heads": ("tp",),
    "tp_in_scaleup_domain": ("tp", "cp"),
    "pp_le_layers": ("pp", "vpp"),
    "pp_divides_layers": ("pp", "vpp"),
    "vpp_needs_interleaved": ("vpp", "schedule", "pp"),
    "schedule_needs_pp": ("schedule", "pp"),
    "ep_divides_experts": ("ep",),
    "ep_needs_moe": ("ep",),
    "ep_divides_tp_dp_cp": ("ep", "tp", "dp", "cp"),
    "cp_divides_seq": ("cp",),
    "batch_divisible": ("global_batch", "micro_batch", "dp"),
    "sp_needs_tp": ("sp", "tp"),
    "zero_needs_dp": ("zero", "dp"),
    "hsdp_needs_sharding": ("hsdp", "zero", "dp"),
    "offload_supported": ("offload", "offload_params"),
    "offload_params_needs_zero3": ("offload_params", "zero"),
}

#: rules that need the cluster; reported after the model rules (the more specific complaint comes first)
CLUSTER_RULES: tuple[str, ...] = ("accelerator_count", "tp_in_scaleup_domain")
RULE_ORDER: tuple[str, ...] = tuple(r for r in RULES if r not in CLUSTER_RULES) + CLUSTER_RULES


def _rule_impls(model: ModelSpec, cluster: ClusterSpec | None, s: StrategyArrays, seq_len: int,
                cp_chunks: int, offload_tiers: tuple[tuple[str, ...], tuple[str, ...]] = (("cpu", "nvme"),
                                                                                          ("cpu", "nvme")),
                ) -> dict[str, Callable[[], np.ndarray]]:
    """Each rule's one implementation: a thunk returning the mask of strategies that BREAK it."""
    L = model.n_layers
    heads, kv = model.n_heads, model.kv_heads
    moe = model.moe
    interleaved = SCHEDULES.index("interleaved")
    ok_opt = np.array([0] + [OFFLOAD_TIERS.index(t) for t in offload_tiers[0]], dtype=np.int8)
    ok_par = np.array([0] + [OFFLOAD_TIERS.index(t) for t in offload_tiers[1]], dtype=np.int8)
    impl: dict[str, Callable[[], np.ndarray]] = {
        "tp_divides_heads": lambda: heads % s.tp != 0,
        "tp_divides_kv_heads": lambda: (kv % s.tp != 0) & (s.tp % kv != 0),
        "pp_le_layers": lambda: s.pp * s.vpp > L,
        "pp_divides_layers": lambda: L % (s.pp * s.vpp) != 0,
        "vpp_needs_interleaved": lambda: (s.vpp > 1) & ((s.schedule != interleaved) | (s.pp == 1)),
        "schedule_needs_pp": lambda: (s.schedule != SCHEDULES.index("1f1b")) & (s.pp == 1),
        "ep_divides_experts": lambda: (moe.n_experts if moe else 1) % s.ep != 0,
        "ep_needs_moe": lambda: (s.ep > 1) & (moe is None),
        "ep_divides_tp_dp_cp": lambda: (s.tp * s.dp * s.cp) % s.ep != 0,
        "cp_divides_seq": lambda: (s.cp > 1) & (seq_len % (cp_chunks * s.cp) != 0),
        "batch_divisible": lambda: s.global_batch % (s.micro_batch * s.dp) != 0,
        "sp_needs_tp": lambda: s.sp & (s.tp == 1),
        "zero_needs_dp": lambda: (s.zero > 0) & (s.dp == 1),
        "hsdp_needs_sharding": lambda: s.hsdp & ((s.zero < 2) | (s.dp == 1)),
        "offload_supported": lambda: ~np.isin(s.offload, ok_opt) | ~np.isin(s.offload_params, ok_par),
        "offload_params_needs_zero3": lambda: (s.offload_params > 0) & (s.zero < 3),
    }
    if cluster is not None:
        n, domain = cluster.n_accelerators, max(cluster.domain, 1)
        impl["accelerator_count"] = lambda: s.tp * s.pp * s.dp * s.cp != n
        impl["tp_in_scaleup_domain"] = lambda: s.tp * s.cp > domain
    return impl


def enforced_rules(model: ModelSpec, cluster: ClusterSpec | None, *, framework: Framework | str | None = None,
                   uneven_pp: bool | None = None, tp_across_nodes: bool | None = None) -> tuple[tuple[str, ...], int]:
    """The rules :func:`legality_masks` enforces for this model, cluster and framework (in reporting order),
    and the context-parallel chunk count: the framework's ``legality:`` data, options overridden by the
    arguments; rules that cannot apply (MoE rules on a dense model, cluster rules without a cluster) dropped."""
    if framework is not None:
        from .rules import get_framework

        fw = get_framework(framework) if isinstance(framework, str) else framework
        listed: tuple[str, ...] = fw.legality.rules
        opts = fw.legality
        uneven = opts.uneven_pp if uneven_pp is None else uneven_pp
        across = opts.tp_across_nodes if tp_across_nodes is None else tp_across_nodes
        cp_chunks = opts.cp_chunks
    else:
        listed = tuple(RULES)
        uneven, across, cp_chunks = bool(uneven_pp), bool(tp_across_nodes), 2
    drop = {"ep_divides_experts", "ep_divides_tp_dp_cp"} if model.moe is None else {"ep_needs_moe"}
    if uneven:
        drop.add("pp_divides_layers")
    if across:
        drop.add("tp_in_scaleup_domain")
    if cluster is None:
        drop.update(CLUSTER_RULES)
    return tuple(r for r in RULE_ORDER if r in listed and r not in drop), cp_chunks


def legality_masks(model: ModelSpec, cluster: ClusterSpec | None, s: StrategyArrays, seq_len: int, *,
                   framework: Framework | str | None = None, rules: Iterable[str] | None = None,
                   uneven_pp: bool | None = None, tp_across_nodes: bool | None = None) -> dict[str, np.ndarray]:
    """For each enforced rule, a boolean mask of the strategies that BREAK it (array-first).

    Which rules are enforced is framework data (``legality:`` in ``catalog/rules/<framework>.yaml``): its
    ``rules`` list and its options ``uneven_pp`` (stages may hold different layer counts: ``pp_divides_layers``
    is not enforced), ``tp_across_nodes`` (``tp_in_scaleup_domain`` is not enforced) and ``cp_chunks`` (the
    sequence is cut into ``cp_chunks * cp`` pieces). Without a framework every rule is enforced, with
    ``uneven_pp`` and ``tp_across_nodes`` off. ``uneven_pp``/``tp_across_nodes`` given here override the
    data; ``rules`` restricts the result to those rules (still only the enforced ones). Cluster rules come
    last (a model rule is the more specific complaint) and need ``cluster``.
    """
    enforced, cp_chunks = enforced_rules(model, cluster, framework=framework, uneven_pp=uneven_pp,
                                         tp_across_nodes=tp_across_nodes)
    wanted = set(enforced if rules is None else rules) & set(enforced)
    tiers: tuple[tuple[str, ...], tuple[str, ...]] = (("cpu", "nvme"), ("cpu", "nvme"))
    if framework is not None:
        from .rules import get_framework

        fw = get_framework(framework) if isinstance(framework, str) else framework
        tiers = (fw.offload.optimizer, fw.offload.params)
    impl = _rule_impls(model, cluster, s, seq_len, cp_chunks, tiers)
    return {r: impl[r]() for r in enforced if r in wanted}


def _fw_name(framework: Any) -> str:
    if framework is None:
        return "(any)"
    return framework if isinstance(framework, str) else framework.name


def _fw_tiers(framework: Any, which: int) -> str:
    if framework is None:
        return "cpu/nvme"
    from .rules import get_framework

    fw = get_framework(framework) if isinstance(framework, str) else framework
    tiers = fw.offload.params if which else fw.offload.optimizer
    return "/".join(tiers) or "nothing"


def check_strategy(model: ModelSpec, cluster: ClusterSpec | None, strategy: Strategy, seq_len: int,
                   **kw: Any) -> None:
    """Raise :class:`InvalidStrategyError` naming the first rule ``strategy`` breaks (``kw``: see
    :func:`legality_masks`: ``framework``, ``rules``, ``uneven_pp``, ``tp_across_nodes``)."""
    masks = legality_masks(model, cluster, strategy.to_arrays(), seq_len, **kw)
    vals = {
        "accelerator_count": f"tp*pp*dp*cp = {strategy.tp}*{strategy.pp}*{strategy.dp}*{strategy.cp} = "
        f"{strategy.n_accelerators}, cluster has {cluster.n_accelerators if cluster else '?'}",
        "tp_divides_heads": f"tp={strategy.tp}, heads={model.n_heads}",
        "tp_divides_kv_heads": f"tp={strategy.tp}, kv_heads={model.kv_heads}",
        "tp_in_scaleup_domain": f"tp*cp={strategy.tp * strategy.cp}, "
        f"scale-up domain={cluster.domain if cluster else '?'}",
        "pp_le_layers": f"pp*vpp={strategy.pp}*{strategy.vpp}, layers={model.n_layers}",
        "pp_divides_layers": f"pp*vpp={strategy.pp * strategy.vpp}, layers={model.n_layers}",
        "vpp_needs_interleaved": f"vpp={strategy.vpp}, schedule={strategy.schedule}, pp={strategy.pp}",
        "schedule_needs_pp": f"schedule={strategy.schedule}, pp={strategy.pp}",
        "ep_divides_experts": f"ep={strategy.ep}, experts={model.moe.n_experts if model.moe else 0}",
        "ep_needs_moe": f"ep={strategy.ep}, model {model.name} has no experts",
        "ep_divides_tp_dp_cp": f"ep={strategy.ep}, tp*dp*cp={strategy.tp * strategy.dp * strategy.cp}",
        "cp_divides_seq": f"cp={strategy.cp}, seq_len={seq_len}",
        "batch_divisible": f"global_batch={strategy.global_batch}, micro_batch*dp="
        f"{strategy.micro_batch}*{strategy.dp}={strategy.micro_batch * strategy.dp}",
        "sp_needs_tp": "sp=True, tp=1",
        "zero_needs_dp": f"zero={strategy.zero}, dp=1",
        "hsdp_needs_sharding": f"hsdp=True, zero={strategy.zero}, dp={strategy.dp}",
        "offload_supported": f"offload={strategy.offload}, offload_params={strategy.offload_params}, "
        f"framework {_fw_name(kw.get('framework'))} offloads optimizer to {_fw_tiers(kw.get('framework'), 0)}, "
        f"params to {_fw_tiers(kw.get('framework'), 1)}",
        "offload_params_needs_zero3": f"offload_params={strategy.offload_params}, zero={strategy.zero}",
    }
    broken = [rule for rule, mask in masks.items() if bool(np.asarray(mask).reshape(-1)[0])]
    if broken:
        first = broken[0]
        more = f"; also breaks: {', '.join(broken[1:])}" if len(broken) > 1 else ""
        raise InvalidStrategyError(first, f"{RULES[first]} ({vals[first]}){more}")
