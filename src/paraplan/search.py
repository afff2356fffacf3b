"""The planner: enumerate every legal parallel strategy, price them all through :func:`evaluate_training`,
keep the ones that fit, rank them, and explain the winners and the rejects.

One cost model: every number here comes from :func:`paraplan.train.evaluate_training` (columns of
strategies in chunks); legality from :func:`paraplan.strategy.legality_masks` with the framework's
``legality:`` data. Nothing in this module prices anything by itself.

The search space for ``n`` accelerators is the cross product of candidate values per axis:

* layout: every ordered factorisation ``tp * pp * cp * dp = n`` (so ``accelerator_count`` always holds);
* ``ep``: divisors of ``n`` up to the expert count (MoE models, frameworks with expert parallelism);
* ``vpp``: 1, and 2 .. ``search.max_vpp`` when the framework offers the interleaved schedule;
* schedule, ZeRO stage: the framework's ``schedules`` and ``zero_stages``; HSDP where ``search.hsdp``;
* micro-batch: every divisor of the global batch; sequence parallelism on/off; recompute none, selective,
  full; the precisions the caller allows (those the accelerator has units for).

Rules prune the grid axis by axis (a rule applies as soon as the fields it reads, ``RULE_FIELDS``, are
enumerated), so the illegal part is never materialised; the count of grid strategies breaking each rule is
computed exactly on the sub-grid of the axes that rule reads. The legal strategies are priced in chunks.
"""

from __future__ import annotations

import difflib
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .errors import ConfigError
from .rules import Framework, get_framework
from .specs import ClusterSpec, ModelSpec
from .strategy import (
    OFFLOAD_TIERS,
    PRECISIONS,
    RECOMPUTES,
    RULE_FIELDS,
    RULES,
    SCHEDULES,
    Strategy,
    StrategyArrays,
    enforced_rules,
    legality_masks,
)
from .train import MEMORY_COMPONENTS, TIME_COMPONENTS, Workload, evaluate_memory, evaluate_training

Objective = Literal["throughput", "cost", "time-to-train"]
OBJECTIVES: tuple[str, ...] = ("throughput", "cost", "time-to-train")

#: more accelerators than this is outside what paraplan models (the largest clusters are ~10^5)
MAX_ACCELERATORS = 262_144
#: at most this many accelerator counts in one search (a range is expanded to whole nodes)
MAX_GPU_COUNTS = 512
#: the largest global batch (sequences) a search accepts
MAX_GLOBAL_BATCH = 1 << 24
#: strategies priced per call of evaluate_training (large enough to amortise the per-call overhead, small
#: enough to stay in cache; see docs/performance.md)
CHUNK = 8192
#: token budget assumed by the time-to-train objective when none is given
DEFAULT_TOKENS = 1e12
#: extra knobs ``--allow`` understands besides precisions
ALLOW_FEATURES: dict[str, str] = {
    "offload": "optimizer states, gradients and ZeRO-3 parameters may live in host memory or on NVMe (the "
               "framework's offload tiers; ZeRO-Offload / ZeRO-Infinity)",
    "tp-across-nodes": "TP/CP groups may span scale-up domains (tp_in_scaleup_domain not enforced)",
}

#: strategy fields enumerated by each search axis, in enumeration order (rule-free axes are expanded last)
AXES: dict[str, tuple[str, ...]] = {
    "layout": ("tp", "pp", "cp", "dp"),
    "ep": ("ep",),
    "vpp": ("vpp",),
    "schedule": ("schedule",),
    "micro_batch": ("micro_batch",),
    "zero": ("zero",),
    "hsdp": ("hsdp",),
    "sp": ("sp",),
    "recompute": ("recompute",),
    "precision": ("precision",),
    "offload": ("offload",),
    "offload_params": ("offload_params",),
}
#: fields fixed for a whole search (not enumerated)
FIXED_FIELDS = ("global_batch", "optimizer")
COMM_COMPONENTS = ("tp_comm", "cp_comm", "ep_comm", "pp_comm", "dp_comm")
OPTIMIZER_CODES = {"adamw": 0, "adam": 1, "sgd": 2}


# ===================================================================== helpers
def divisors(n: int) -> list[int]:
    """Sorted divisors of ``n`` (n >= 1)."""
    small, large = [], []
    i = 1
    while i * i <= n:
        if n % i == 0:
            small.append(i)
            if i * i != n:
                large.append(n // i)
        i += 1
    return small + large[::-1]


def layouts(n: int, context_parallel: bool = True) -> np.ndarray:
    """Every ordered factorisation ``tp * pp * cp * dp = n`` as rows ``(tp, pp, cp, dp)``."""
    rows = []
    for tp in divisors(n):
        for pp in divisors(n // tp):
            rest = n // (tp * pp)
            for cp in divisors(rest) if context_parallel else [1]:
                rows.append((tp, pp, cp, rest // cp))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def _range_counts(part: str, lo: int, hi: int, kind: str, step: int | None, per_node: int) -> list[int]:
    if lo < 1 or hi < lo:
        raise ConfigError(f"--gpus range '{part}': need 1 <= LO <= HI")
    if hi > MAX_ACCELERATORS:
        raise ConfigError(f"--gpus range '{part}': more than {MAX_ACCELERATORS:,} accelerators is outside what "
                          "paraplan models")
    if step is None:  # every whole number of nodes (and, below one node, the divisors of a node)
        return [c for c in range(lo, hi + 1) if c % per_node == 0 or per_node % c == 0]
    if kind == "x":
        if step < 2:
            raise ConfigError(f"--gpus range '{part}': a geometric step needs a factor >= 2")
        out, c = [], lo
        while c <= hi:
            out.append(c)
            c *= step
        return out
    if step < 1:
        raise ConfigError(f"--gpus range '{part}': the step must be >= 1")
    return list(range(lo, hi + 1, step))


def parse_gpus(text: str | int | Sequence[int], per_node: int) -> list[int]:
    """Accelerator counts from ``N``, ``A,B,C``, ``LO..HI`` (every whole number of nodes in the range),
    ``LO..HI:STEP`` or ``LO..HI:x2`` (geometric). Counts that are not whole nodes are dropped (a single count
    that is not is an error). Raises :class:`ConfigError` with a one-line reason."""
    counts: list[int] = []
    if isinstance(text, int):
        counts = [text]
    elif not isinstance(text, str):
        counts = [int(x) for x in text]
    else:
        for part in [q.strip() for q in text.strip().replace("_", "").split(",")]:
            m = re.fullmatch(r"(\d+)\s*\.\.\s*(\d+)(?:\s*:\s*(x?)(\d+))?", part)
            if m:
                step = int(m.group(4)) if m.group(4) is not None else None
                counts += _range_counts(part, int(m.group(1)), int(m.group(2)), m.group(3) or "", step, per_node)
            elif re.fullmatch(r"-?\d+", part):
                counts.append(int(part))
            else:
                raise ConfigError(f"--gpus '{part}' is not a count or a range (examples: 1024, 256..2048, "
                                  "256..4096:x2, 512,1024)")
    for c in counts:
        if c < 1:
            raise ConfigError(f"--gpus {c}: need at least one accelerator")
        if c > MAX_ACCELERATORS:
            raise ConfigError(f"--gpus {c:,}: more than {MAX_ACCELERATORS:,} accelerators is outside what "
                              "paraplan models")
    whole = sorted({c for c in counts if c % per_node == 0 or per_node % c == 0})
    if not whole:
        raise ConfigError(f"--gpus {text}: not a whole number of {per_node}-accelerator nodes")
    if len(whole) > MAX_GPU_COUNTS:
        raise ConfigError(f"--gpus {text}: {len(whole)} accelerator counts is too many for one search (at most "
                          f"{MAX_GPU_COUNTS}); give a step, e.g. {whole[0]}..{whole[-1]}:x2")
    return whole


# ===================================================================== the space
@dataclass(frozen=True)
class SearchSpace:
    """Candidate values per axis for one accelerator count (see the module docstring)."""

    n: int
    layout: np.ndarray  # rows (tp, pp, cp, dp)
    values: dict[str, np.ndarray]  # axis -> candidate values (codes for categorical fields)

    def size(self, axis: str) -> int:
        return int(self.layout.shape[0]) if axis == "layout" else int(self.values[axis].size)

    @property
    def n_candidates(self) -> int:
        return math.prod(self.size(a) for a in AXES)


def build_space(model: ModelSpec, n: int, fw: Framework, global_batch: int, precisions: Sequence[str],
                offload: bool = False) -> SearchSpace:
    """The candidate grid for ``n`` accelerators (framework data decides schedules, ZeRO stages, options;
    ``offload``: also the framework's offload tiers for optimizer states and parameters)."""
    srch = fw.search
    ep = [e for e in divisors(n) if model.moe is not None and e <= model.moe.n_experts] \
        if model.moe is not None and srch.expert_parallel else [1]
    vpp = [1] + (list(range(2, srch.max_vpp + 1)) if "interleaved" in fw.schedules else [])
    values = {
        "ep": np.array(ep or [1], dtype=np.int64),
        "vpp": np.array(vpp, dtype=np.int64),
        "schedule": np.array([SCHEDULES.index(x) for x in fw.schedules], dtype=np.int8),
        "micro_batch": np.array(divisors(global_batch), dtype=np.int64),
        "zero": np.array(sorted(fw.zero_stages), dtype=np.int64),
        "hsdp": np.array([False, True] if srch.hsdp else [False]),
        "sp": np.array([False, True] if srch.sequence_parallel else [False]),
        "recompute": np.arange(len(RECOMPUTES), dtype=np.int8),
        "precision": np.array([PRECISIONS.index(p) for p in precisions], dtype=np.int8),
        "offload": np.array([0] + ([OFFLOAD_TIERS.index(t) for t in fw.offload.optimizer] if offload else []),
                            dtype=np.int8),
        "offload_params": np.array([0] + ([OFFLOAD_TIERS.index(t) for t in fw.offload.params]
                                          if offload and 3 in fw.zero_stages else []), dtype=np.int8),
    }
    return SearchSpace(n=n, layout=layouts(n, srch.context_parallel), values=values)


def _axis_columns(space: SearchSpace, axis: str) -> dict[str, np.ndarray]:
    if axis == "layout":
        return {f: space.layout[:, i] for i, f in enumerate(AXES["layout"])}
    return {AXES[axis][0]: space.values[axis]}


def _cross(cols: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cross product of the rows of ``cols`` with the rows of ``new`` (``cols`` major)."""
    n = len(next(iter(cols.values()))) if cols else 1
    k = len(next(iter(new.values())))
    out = {f: np.repeat(c, k) for f, c in cols.items()}
    out.update({f: np.tile(c, n) for f, c in new.items()})
    return out


@dataclass
class Enumeration:
    """Legal strategies of one space: a prefix table (axes that rules read) times the rule-free tail axes."""

    prefix: dict[str, np.ndarray]
    tail: dict[str, np.ndarray]  # cross product of the rule-free axes
    n_candidates: int
    rule_counts: dict[str, int]  # grid strategies breaking each rule (a strategy may break several)

    @property
    def n_prefix(self) -> int:
        return len(next(iter(self.prefix.values())))

    @property
    def n_tail(self) -> int:
        return len(next(iter(self.tail.values()))) if self.tail else 1

    @property
    def n_legal(self) -> int:
        return self.n_prefix * self.n_tail

    def chunks(self, size: int = CHUNK) -> Iterable[dict[str, np.ndarray]]:
        """Columns of legal strategies, ``size`` at a time (prefix-major, so the order is deterministic)."""
        step = max(1, size // self.n_tail)
        for a in range(0, self.n_prefix, step):
            part = {f: c[a:a + step] for f, c in self.prefix.items()}
            yield _cross(part, self.tail) if self.tail else part


def enumerate_legal(model: ModelSpec, cluster: ClusterSpec, space: SearchSpace, seq_len: int, global_batch: int,
                    fw: Framework, *, optimizer: str = "adamw", tp_across_nodes: bool | None = None) -> Enumeration:
    """Prune the grid axis by axis with the framework's rules; count the grid strategies breaking each rule."""
    rules, _ = enforced_rules(model, cluster, framework=fw, tp_across_nodes=tp_across_nodes)
    fixed = {"global_batch": global_batch, "optimizer": OPTIMIZER_CODES[optimizer]}
    rule_axes = {r: [a for a in AXES if set(AXES[a]) & set(RULE_FIELDS[r])] for r in rules}
    ruled = {a for axes in rule_axes.values() for a in axes} | {"layout"}
    prefix_axes = [a for a in AXES if a in ruled]
    tail_axes = [a for a in AXES if a not in ruled]

    def masks(cols: dict[str, np.ndarray], which: list[str]) -> dict[str, np.ndarray]:
        s = StrategyArrays.from_columns(**cols, **fixed)
        return legality_masks(model, cluster, s, seq_len, framework=fw, rules=which, tp_across_nodes=tp_across_nodes)

    # exact count of grid strategies breaking each rule, on the sub-grid of the axes it reads
    groups: dict[tuple[str, ...], list[str]] = {}
    for r in rules:  # rules reading the same axes share one sub-grid
        groups.setdefault(tuple(rule_axes[r]), []).append(r)
    found: dict[str, int] = {}
    for axes, group in groups.items():
        sub: dict[str, np.ndarray] = {}
        for a in axes:
            sub = _cross(sub, _axis_columns(space, a))
        others = math.prod(space.size(a) for a in AXES if a not in axes)
        got = masks(sub, group) if sub else {}
        for r in group:
            found[r] = int(np.count_nonzero(got[r])) * others if r in got else 0
    counts = {r: found[r] for r in rules}

    # the legal prefix, axis by axis
    cols: dict[str, np.ndarray] = {}
    have: set[str] = set(FIXED_FIELDS)
    done: set[str] = set()
    for a in prefix_axes:
        cols = _cross(cols, _axis_columns(space, a))
        have |= set(AXES[a])
        now = [r for r in rules if r not in done and set(RULE_FIELDS[r]) <= have]
        if now:
            bad = np.zeros(len(cols["tp"]), dtype=bool)
            for m in masks(cols, now).values():
                bad |= m
            if bad.any():
                keep = ~bad
                cols = {f: c[keep] for f, c in cols.items()}
            done |= set(now)
    tail: dict[str, np.ndarray] = {}
    for a in tail_axes:
        tail = _cross(tail, _axis_columns(space, a))
    return Enumeration(prefix=cols, tail=tail, n_candidates=space.n_candidates, rule_counts=counts)


# ===================================================================== results
class Plan:
    """One priced strategy: every output :func:`evaluate_training` gave it (``values``), its score under the
    search objective (higher is better) and the equivalent strategies it stands for (identical numbers).

    Built lazily from a priced chunk: the :class:`Strategy` and the ``values`` dict are made on first use."""

    __slots__ = ("n_accelerators", "score", "order", "equivalents", "_eq", "_src", "_j", "_strategy", "_values")

    def __init__(self, strategy: Strategy | None, n_accelerators: int, values: dict[str, float] | None,
                 score: float, order: tuple[int, int],
                 src: tuple[StrategyArrays, dict[str, np.ndarray]] | None = None, j: int = 0) -> None:
        self.n_accelerators = n_accelerators
        self.score = score
        self.order = order  # (accelerator-count index, enumeration index): deterministic tie-break
        self.equivalents: list[Strategy] = []
        self._eq: set[tuple[int, int]] = set()
        self._src = src
        self._j = j
        self._strategy = strategy
        self._values = values

    @property
    def strategy(self) -> Strategy:
        if self._strategy is None:
            assert self._src is not None
            self._strategy = self._src[0].strategy(self._j)
        return self._strategy

    @property
    def values(self) -> dict[str, float]:
        if self._values is None:
            assert self._src is not None
            self._values = {k: float(v[self._j]) for k, v in self._src[1].items()}
        return self._values

    def _get(self, key: str) -> float:
        if self._values is not None or self._src is None:
            return self.values[key]
        return float(self._src[1][key][self._j])

    @property
    def step_time_s(self) -> float:
        return self._get("step_time_s")

    @property
    def tokens_per_s(self) -> float:
        return self._get("tokens_per_s")

    @property
    def mfu(self) -> float:
        return self._get("mfu")

    @property
    def memory_bytes(self) -> float:
        return self._get("memory_bytes")

    @property
    def capacity_bytes(self) -> float:
        return self._get("memory_capacity_bytes")

    @property
    def headroom_bytes(self) -> float:
        return self.capacity_bytes - self.memory_bytes

    @property
    def fits(self) -> bool:
        return bool(self._get("fits"))

    @property
    def time_components(self) -> dict[str, float]:
        return {c: self.values[f"time.{c}"] for c in TIME_COMPONENTS}

    @property
    def memory_components(self) -> dict[str, float]:
        return {c: self.values[f"mem.{c}"] for c in MEMORY_COMPONENTS}

    def label(self) -> str:
        return strategy_label(self.strategy)

    def same_numbers(self, other: Plan) -> bool:
        return (self.n_accelerators == other.n_accelerators and self.step_time_s == other.step_time_s
                and self.memory_bytes == other.memory_bytes)

    def to_json(self, price_per_hour: float, tokens: float | None) -> dict[str, Any]:
        v = self.values
        out: dict[str, Any] = {
            "n_accelerators": self.n_accelerators,
            "strategy": self.strategy.model_dump(mode="json"),
            "label": self.label(),
            "equivalent_strategies": [strategy_label(e) for e in self.equivalents],
            "score": self.score,
            "step_time_s": v["step_time_s"],
            "tokens_per_s": v["tokens_per_s"],
            "tokens_per_s_per_accelerator": v["tokens_per_s_per_accelerator"],
            "model_tflops_per_accelerator": v["model_tflops_per_accelerator"],
            "mfu": v["mfu"],
            "hfu": v["hfu"],
            "memory_bytes": v["memory_bytes"],
            "memory_capacity_bytes": v["memory_capacity_bytes"],
            "memory_headroom_bytes": self.headroom_bytes,
            "fits": self.fits,
            "usd_per_million_tokens": float(usd_per_token(v["tokens_per_s"], self.n_accelerators,
                                                          price_per_hour)) * 1e6,
            "time_components_s": self.time_components,
            "memory_components_bytes": self.memory_components,
        }
        if tokens:
            out["time_to_train_s"] = tokens / v["tokens_per_s"]
            out["cost_usd"] = tokens / v["tokens_per_s"] / 3600.0 * price_per_hour * self.n_accelerators
        return out


def strategy_label(s: Strategy) -> str:
    """Short human form: ``tp8 pp16 vpp3 dp8 cp1 sp mb1 z1 rc=full 1f1b bf16``."""
    parts = [f"tp{s.tp}", f"pp{s.pp}"] + ([f"vpp{s.vpp}"] if s.vpp > 1 else []) + [f"dp{s.dp}"]
    parts += [f"cp{s.cp}"] if s.cp > 1 else []
    parts += [f"ep{s.ep}"] if s.ep > 1 else []
    parts += ["sp"] if s.sp else []
    parts += [f"mb{s.micro_batch}", f"zero{s.zero}" + ("-hsdp" if s.hsdp else ""), f"rc={s.recompute}"]
    parts += [s.schedule] if s.pp > 1 else []
    parts += [s.precision]
    parts += [f"offload={s.offload}"] if s.offload != "none" else []
    parts += [f"offload_params={s.offload_params}"] if s.offload_params != "none" else []
    return " ".join(parts)


_SHORT_SCHED = {"1f1b": "1f1b", "gpipe": "gpipe", "interleaved": "intl", "zero-bubble": "zb"}


def short_label(s: Strategy) -> str:
    """Compact form for tables: ``tp4 pp8/6 dp8 cp2 sp mb4 z1 none intl bf16`` (pp/vpp, ZeRO stage, recompute,
    schedule)."""
    parts = [f"tp{s.tp}", f"pp{s.pp}" + (f"/{s.vpp}" if s.vpp > 1 else ""), f"dp{s.dp}"]
    parts += [f"cp{s.cp}"] if s.cp > 1 else []
    parts += [f"ep{s.ep}"] if s.ep > 1 else []
    parts += ["sp"] if s.sp else []
    parts += [f"mb{s.micro_batch}", f"z{s.zero}" + ("h" if s.hsdp else ""), s.recompute[:4]]
    parts += [_SHORT_SCHED[s.schedule]] if s.pp > 1 else []
    parts += [f"off:{s.offload}"] if s.offload != "none" else []
    parts += [f"poff:{s.offload_params}"] if s.offload_params != "none" else []
    return " ".join(parts + [s.precision])


def usd_per_token(tokens_per_s: np.ndarray | float, n_accelerators: np.ndarray | float,
                  price_per_hour: float) -> np.ndarray | float:
    """Dollars per trained token (accelerator-hours per token when the price is unknown, i.e. 0)."""
    price = price_per_hour if price_per_hour > 0 else 1.0
    return n_accelerators * price / 3600.0 / tokens_per_s


@dataclass
class SearchResult:
    """What a plan search found, with the reasons for everything it rejected."""

    model: str
    cluster: str
    accelerator: str
    framework: str
    objective: str
    global_batch: int
    seq_len: int
    gpus: list[int]
    precisions: list[str]
    price_per_hour: float
    tokens: float | None
    n_candidates: int = 0  # strategies in the grid
    n_evaluated: int = 0  # legal strategies priced: memory for all (evaluate_memory), time for those that fit
    n_feasible: int = 0  # of those, the ones that fit in memory
    n_timed: int = 0  # strategies whose step time was priced (evaluate_training): the feasible ones, plus misses
    elapsed_s: float = 0.0
    rejected_by_rule: dict[str, int] = field(default_factory=dict)  # grid strategies breaking each rule
    rejected_by_memory: dict[str, int] = field(default_factory=dict)  # legal, not fitting: largest component
    top: list[Plan] = field(default_factory=list)
    pareto: list[Plan] = field(default_factory=list)
    best_by_gpus: dict[int, Plan] = field(default_factory=dict)
    closest: list[Plan] = field(default_factory=list)  # legal plans nearest to fitting (when none fits)
    notes: list[str] = field(default_factory=list)
    feasible_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # every feasible plan's score
    count_stats: dict[int, dict[str, int]] = field(default_factory=dict)  # per accelerator count

    @property
    def n_illegal(self) -> int:
        return self.n_candidates - self.n_evaluated

    @property
    def n_not_fitting(self) -> int:
        return self.n_evaluated - self.n_feasible

    @property
    def best(self) -> Plan | None:
        return self.top[0] if self.top else None

    def rank_fraction(self, score: float) -> float:
        """Share of the feasible strategies scoring strictly better than ``score`` (0 = the best)."""
        if self.feasible_scores.size == 0:
            return 1.0
        return float(np.count_nonzero(self.feasible_scores > score)) / self.feasible_scores.size

    def to_json(self) -> dict[str, Any]:
        p, t = self.price_per_hour, self.tokens
        return {
            "model": self.model, "cluster": self.cluster, "accelerator": self.accelerator,
            "framework": self.framework, "objective": self.objective, "global_batch": self.global_batch,
            "seq_len": self.seq_len, "gpus": self.gpus, "precisions": self.precisions,
            "price_per_hour": p, "tokens": t,
            "n_candidates": self.n_candidates, "n_evaluated": self.n_evaluated, "n_feasible": self.n_feasible,
            "n_timed": self.n_timed,
            "n_illegal": self.n_illegal, "n_not_fitting": self.n_not_fitting, "elapsed_s": self.elapsed_s,
            "strategies_per_s": self.n_evaluated / self.elapsed_s if self.elapsed_s > 0 else None,
            "rejected_by_rule": {r: {"count": c, "rule": RULES[r]} for r, c in self.rejected_by_rule.items()},
            "rejected_by_memory": self.rejected_by_memory,
            "top": [dict(rank=i + 1, **pl.to_json(p, t)) for i, pl in enumerate(self.top)],
            "pareto": [pl.to_json(p, t) for pl in self.pareto],
            "best_by_gpus": {str(n): pl.to_json(p, t) for n, pl in self.best_by_gpus.items()},
            "closest": [pl.to_json(p, t) for pl in self.closest],
            "per_gpus": {str(n): st for n, st in self.count_stats.items()},
            "notes": self.notes,
        }


# ===================================================================== the search
def resolve_precisions(cluster: ClusterSpec, allow: Iterable[str] = ()) -> tuple[list[str], list[str], bool]:
    """Precisions to search (bf16 plus the allowed ones the accelerator has units for), notes, and whether
    TP may cross scale-up domains. Raises :class:`ConfigError` for an unknown ``--allow`` item."""
    precisions = ["bf16"]
    notes: list[str] = []
    across = False
    acc = cluster.accelerator
    for item in allow:
        key = item.strip().lower()
        if not key:
            continue
        if key in PRECISIONS:
            base = "bf16" if key == "fp16" else key
            if key != "fp32" and base not in acc.peak_flops and key not in acc.peak_flops:
                notes.append(f"{key}: {acc.name} has no {key} units (no {key} peak in the catalog); not searched")
                continue
            if key not in precisions:
                precisions.append(key)
        elif key in ALLOW_FEATURES:
            notes.append(f"{key}: {ALLOW_FEATURES[key]}")
            across = across or key == "tp-across-nodes"
        else:
            known = ", ".join([p for p in PRECISIONS if p != "bf16"] + list(ALLOW_FEATURES))
            raise ConfigError(f"--allow '{item}': unknown; known: {known}")
    return precisions, notes, across


def allows_offload(allow: Iterable[str] = ()) -> bool:
    """Whether ``--allow`` asks for the offload tiers to be searched."""
    return any(a.strip().lower() == "offload" for a in allow)


def check_request(global_batch: int, seq_len: int) -> None:
    """Reject absurd inputs with one clear line."""
    if global_batch < 1:
        raise ConfigError(f"--global-batch must be at least 1 sequence (got {global_batch})")
    if global_batch > MAX_GLOBAL_BATCH:
        raise ConfigError(f"--global-batch {global_batch:,} sequences is absurd (at most {MAX_GLOBAL_BATCH:,})")
    if seq_len < 1:
        raise ConfigError(f"--seq must be at least 1 token (got {seq_len})")
    if seq_len > 16 * 1024 * 1024:
        raise ConfigError(f"--seq {seq_len:,} tokens is absurd (at most {16 * 1024 * 1024:,})")


class _Best:
    """Running top-K of distinct outcomes (by score, then fewer accelerators, more headroom, enumeration
    order); strategies with identical numbers are folded into the first as ``equivalents``."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.items: list[Plan] = []

    @staticmethod
    def key(p: Plan) -> tuple[float, int, float, tuple[int, int]]:
        return (-p.score, p.n_accelerators, -p.headroom_bytes, p.order)

    def add(self, plans: list[Plan]) -> None:
        kept: list[Plan] = []
        for p in sorted(self.items + plans, key=self.key):
            if kept and kept[-1].same_numbers(p) and kept[-1].score == p.score:
                head = kept[-1]
                if p.order not in head._eq and p is not head:
                    head._eq.add(p.order)
                    if len(head.equivalents) < 8:
                        head.equivalents.append(p.strategy)
                continue
            kept.append(p)
            if len(kept) >= self.k + 1:
                break
        self.items = kept[: self.k]


def _select_top(score: np.ndarray, idx: np.ndarray, k: int, head: np.ndarray | None = None) -> np.ndarray:
    """The ``k`` entries of ``idx`` with the best score (ties: more headroom, then the earlier index)."""
    if idx.size > k:
        s = score[idx]
        kth = np.partition(s, s.size - k)[s.size - k]
        idx = idx[s >= kth]
    keys = (idx, -head[idx]) if head is not None else (idx,)
    return idx[np.lexsort((*keys, -score[idx]))][:k]


def _pareto_2d(tps: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Indices of the points not dominated in (max tokens/s, max headroom); of equal points the first."""
    if tps.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(tps.size), -head, -tps))
    h = head[order]
    prev = np.concatenate(([-np.inf], np.maximum.accumulate(h)[:-1]))
    return np.sort(order[h > prev])


def _merge_front(plans: list[Plan], by_count: bool = False) -> list[Plan]:
    """Non-dominated plans: more tokens/s, more headroom and (``by_count``) fewer accelerators; of identical
    points the first in enumeration order."""
    if len(plans) <= 1:
        return plans
    t = np.array([p.tokens_per_s for p in plans])
    h = np.array([p.headroom_bytes for p in plans])
    n = np.array([p.n_accelerators if by_count else 0 for p in plans])
    o = np.array([p.order for p in plans])
    earlier = (o[:, None, 0] < o[None, :, 0]) | ((o[:, None, 0] == o[None, :, 0]) & (o[:, None, 1] < o[None, :, 1]))
    ge = (t[:, None] >= t[None, :]) & (h[:, None] >= h[None, :]) & (n[:, None] <= n[None, :])
    gt = (t[:, None] > t[None, :]) | (h[:, None] > h[None, :]) | (n[:, None] < n[None, :])
    dominated = (ge & (gt | earlier)).any(axis=0)  # [q, p]: q dominates p
    return [p for p, d in zip(plans, dominated, strict=True) if not d]


def _plans(cols: dict[str, np.ndarray], out: dict[str, np.ndarray], score: np.ndarray, idx: np.ndarray, n: int,
           gi: int, base: int, fixed: dict[str, int]) -> list[Plan]:
    """:class:`Plan` objects (lazy) for rows ``idx`` of one priced chunk."""
    if idx.size == 0:
        return []
    sub = StrategyArrays.from_columns(**{f: c[idx] for f, c in cols.items()}, **fixed)
    picked = {k: np.broadcast_to(np.asarray(v, dtype=float), score.shape)[idx] for k, v in out.items()}
    src = (sub, picked)
    sc = score[idx].tolist()
    return [Plan(None, n, None, sc[j], (gi, base + int(i)), src, j) for j, i in enumerate(idx)]


def _score(objective: str, tokens_per_s: np.ndarray, n: int, price: float) -> np.ndarray:
    """Higher is better: tokens/s (throughput, time-to-train) or minus dollars per token (cost)."""
    if objective == "cost":
        return -np.asarray(usd_per_token(tokens_per_s, float(n), price))
    return tokens_per_s


#: strategy fields ``restrict`` accepts, with how to turn a name into a code
_CODES = {"schedule": SCHEDULES, "recompute": RECOMPUTES, "precision": PRECISIONS, "offload": OFFLOAD_TIERS,
          "offload_params": OFFLOAD_TIERS}


_BOOLS = {"true": True, "on": True, "yes": True, "1": True, "false": False, "off": False, "no": False, "0": False}
#: strategy fields that are on/off
_BOOL_FIELDS = ("sp", "hsdp")


def parse_restrict(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["recompute=full", "tp=4,8", "sp=off"]`` -> ``{"recompute": ["full"], "tp": [4, 8], "sp": [False]}``
    (``paraplan plan train --fix``); a field given twice keeps the values both allow."""
    fields = [f for names in AXES.values() for f in names]
    out: dict[str, list[Any]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not text.strip():
            raise ConfigError(f"--fix expects FIELD=VALUE[,VALUE...] (e.g. recompute=full, tp=4,8), not '{item}'")
        if name not in fields:
            near = difflib.get_close_matches(name, fields, n=1)
            raise ConfigError(f"--fix: unknown field '{name}'" + (f" (did you mean '{near[0]}'?)" if near else "")
                              + f"; expected one of {', '.join(fields)}")
        vals: list[Any] = []
        for v in (x.strip().lower() for x in text.split(",") if x.strip()):
            if name in _CODES:
                if v not in _CODES[name]:
                    raise ConfigError(f"--fix {name}: '{v}' is not one of {', '.join(_CODES[name])}")
                vals.append(v)
            elif name in _BOOL_FIELDS:
                if v not in _BOOLS:
                    raise ConfigError(f"--fix {name}: '{v}' is not on/off (true/false)")
                vals.append(_BOOLS[v])
            else:
                try:
                    vals.append(int(v))
                except ValueError:
                    raise ConfigError(f"--fix {name}: '{v}' is not a whole number") from None
        out[name] = [v for v in out[name] if v in vals] if name in out else vals
    return out


def restrict_note(restrict: Mapping[str, Sequence[Any]]) -> str:
    """One line saying how a search was narrowed (``--fix``), for the result's notes."""
    def show(v: Any) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)
    return "search restricted (--fix): " + "; ".join(
        f"{k} in {{{', '.join(show(v) for v in vs)}}}" for k, vs in restrict.items())


def search_options(cluster: ClusterSpec, allow: Iterable[str] = (), fix: Sequence[str] = ()
                   ) -> tuple[list[str], list[str], bool, dict[str, list[Any]]]:
    """What ``--allow`` and ``--fix`` make of a search: (precisions, notes, TP across nodes, restrict). A fixed
    precision is searched without a separate ``--allow`` for it; the notes say how the search was narrowed."""
    restrict = parse_restrict(fix)
    precisions, notes, across = resolve_precisions(cluster, [*allow, *restrict.get("precision", [])])
    if restrict:
        notes.append(restrict_note(restrict))
    return precisions, notes, across, restrict


def _restrict(space: SearchSpace, restrict: Mapping[str, Sequence[Any]] | None) -> SearchSpace:
    if not restrict:
        return space
    layout = space.layout
    values = dict(space.values)
    for name, allowed in restrict.items():
        vals = [(_CODES[name].index(v) if isinstance(v, str) else int(v)) if name in _CODES else v for v in allowed]
        if name in AXES["layout"]:
            col = layout[:, AXES["layout"].index(name)]
            have, layout = col, layout[np.isin(col, np.array(vals, dtype=np.int64))]
            empty = layout.shape[0] == 0
        elif name in values:
            have = values[name]
            values[name] = values[name][np.isin(values[name], np.array(vals))]
            empty = values[name].size == 0
        else:
            raise ConfigError(f"cannot restrict '{name}': expected one of "
                              f"{', '.join(list(AXES['layout']) + list(values))}")
        if empty:
            names = _CODES.get(name)
            offered = sorted({names[int(v)] if names else (bool(v) if name in _BOOL_FIELDS else int(v))
                              for v in np.unique(have)}, key=str)
            raise ConfigError(f"--fix {name}: none of {', '.join(map(str, allowed))} is in the search space on "
                              f"{space.n} accelerators (it has: {', '.join(map(str, offered)) or 'nothing'})"
                              + ("; the space holds bf16 and the allowed precisions the accelerator has units for"
                                 if name == "precision" else ""))
    return SearchSpace(n=space.n, layout=layout, values=values)


def _price_chunk(model: ModelSpec, cluster: ClusterSpec, s: StrategyArrays, workload: Workload, fw: Framework,
                 layer: str) -> tuple[dict[str, np.ndarray], int]:
    """Price a chunk: memory for every strategy (:func:`evaluate_memory`), then time only for the ones that fit
    (:func:`evaluate_training` on that subset; a strategy over memory is rejected whatever its speed). Rows that
    do not fit get NaN for the time outputs. Returns the chunk's outputs and how many rows were timed."""
    mem = evaluate_memory(model, cluster, s, workload, fw)
    feas = np.flatnonzero(mem["fits"])
    if feas.size == len(s):
        return evaluate_training(model, cluster, s, workload, fw, layer=layer), feas.size  # type: ignore[arg-type]
    out = dict(mem)
    _time_rows(out, model, cluster, s, workload, fw, layer, feas)
    return out, feas.size


def _time_rows(out: dict[str, np.ndarray], model: ModelSpec, cluster: ClusterSpec, s: StrategyArrays,
               workload: Workload, fw: Framework, layer: str, idx: np.ndarray) -> None:
    """Price rows ``idx`` of the chunk fully and write every output into ``out`` (a time output not there yet
    becomes a NaN column: the rows nobody timed)."""
    if idx.size == 0:
        return
    timed = evaluate_training(model, cluster, s.take(idx), workload, fw, layer=layer)  # type: ignore[arg-type]
    for k, v in timed.items():
        col = out.get(k)
        if col is None:
            col = out[k] = np.full(len(s), np.nan)
        col[idx] = v


def search(model: ModelSpec, cluster: ClusterSpec, global_batch: int, workload: Workload, *,
           gpus: Sequence[int] | None = None, framework: str | Framework = "megatron",
           objective: str = "throughput", precisions: Sequence[str] = ("bf16",), optimizer: str = "adamw",
           top: int = 10, layer: str = "curves", tp_across_nodes: bool | None = None,
           restrict: Mapping[str, Sequence[Any]] | None = None, chunk: int = CHUNK,
           pareto_max: int = 64, offload: bool = False) -> SearchResult:
    """Search every legal strategy for each accelerator count in ``gpus`` (default: the cluster's own).

    Prices them all through :func:`evaluate_training` (chunks of ``chunk`` strategies), keeps the ones that
    fit, ranks them by ``objective`` (throughput: tokens/s; cost: dollars per token; time-to-train: the
    token budget over tokens/s, which ranks like throughput) and returns the top ``top`` distinct plans,
    the Pareto frontier (tokens/s against memory headroom and accelerator count), the best plan per count,
    the rejection counts per rule and per overflowing memory component, and every feasible score (for
    ranks). ``restrict`` narrows axes (``{"recompute": ["full"], "tp": [8]}``), e.g. to a framework version.
    ``offload`` adds the framework's offload tiers (host memory, NVMe) for optimizer states and parameters.
    """
    t0 = time.perf_counter()
    if objective not in OBJECTIVES:
        raise ConfigError(f"--objective '{objective}': expected one of {', '.join(OBJECTIVES)}")
    if top < 1:
        raise ConfigError(f"--top must be at least 1 (got {top})")
    if optimizer not in OPTIMIZER_CODES:
        raise ConfigError(f"optimizer '{optimizer}': expected one of {', '.join(OPTIMIZER_CODES)}")
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        raise ConfigError(f"precisions {list(precisions)}: expected some of {', '.join(PRECISIONS)}")
    check_request(global_batch, workload.seq_len)
    fw = get_framework(framework) if isinstance(framework, str) else framework
    counts = list(gpus) if gpus else [cluster.n_accelerators]
    acc = cluster.accelerator
    price = acc.price_per_hour
    res = SearchResult(model=model.name, cluster=cluster.name, accelerator=acc.name, framework=fw.name,
                       objective=objective, global_batch=global_batch, seq_len=workload.seq_len, gpus=counts,
                       precisions=list(precisions), price_per_hour=price, tokens=workload.tokens,
                       notes=list(model.caveats))
    if objective == "cost" and price <= 0:
        res.notes.append(f"{acc.name} has no price in the catalog: cost ranked in accelerator-hours per token")
    if objective == "time-to-train" and not workload.tokens:
        res.notes.append(f"no token budget given: time to train shown for {DEFAULT_TOKENS:.0e} tokens")
        res.tokens = DEFAULT_TOKENS
    best = _Best(top)
    closest = _Best(3)
    fixed = {"global_batch": global_batch, "optimizer": OPTIMIZER_CODES[optimizer]}
    scores: list[np.ndarray] = []
    front: list[Plan] = []
    rule_tot: dict[str, int] = {}
    mem_tot = dict.fromkeys(MEMORY_COMPONENTS, 0)
    for gi, n in enumerate(counts):
        cl = scaled_cluster(cluster, n)
        space = _restrict(build_space(model, n, fw, global_batch, precisions, offload), restrict)
        en = enumerate_legal(model, cl, space, workload.seq_len, global_batch, fw, optimizer=optimizer,
                             tp_across_nodes=tp_across_nodes)
        res.n_candidates += en.n_candidates
        for r, c in en.rule_counts.items():
            rule_tot[r] = rule_tot.get(r, 0) + c
        n_feas = 0
        n_timed = 0
        base = 0
        count_best = _Best(1)
        count_front: list[Plan] = []
        for cols in en.chunks(chunk):
            s = StrategyArrays.from_columns(**cols, **fixed)
            out, timed = _price_chunk(model, cl, s, workload, fw, layer)
            n_timed += timed
            fits = out["fits"]
            headroom = out["memory_capacity_bytes"] - out["memory_bytes"]
            feas = np.flatnonzero(fits)
            n_feas += feas.size
            if feas.size < fits.size:  # why the rest do not fit: their largest memory component
                bad_i = np.flatnonzero(~fits)
                stack = np.stack([out[f"mem.{c}"][bad_i] for c in MEMORY_COMPONENTS])
                hist = np.bincount(np.argmax(stack, axis=0), minlength=len(MEMORY_COMPONENTS))
                for ci, cnt in enumerate(hist):
                    mem_tot[MEMORY_COMPONENTS[ci]] += int(cnt)
                if not res.n_feasible and not n_feas:  # nothing fits yet: remember the nearest misses
                    near = _select_top(headroom, bad_i, 3)
                    _time_rows(out, model, cl, s, workload, fw, layer, near)
                    closest.add(_plans(cols, out, headroom, near, n, gi, base, fixed))
            if feas.size:
                tps = out["tokens_per_s"]
                score = _score(objective, tps, n, price)
                scores.append(score[feas])
                # the chunk's best (a few spare for folding equivalents) and its Pareto points, made in one go
                sel = _select_top(score, feas, 2 * top + 4, headroom)
                pf = feas[_pareto_2d(tps[feas], headroom[feas])]
                # a sorted union of two small index sets (np.union1d would import numpy.ma: 15 ms cold)
                both = np.fromiter(sorted(set(sel.tolist()) | set(pf.tolist())), dtype=np.int64)
                made = dict(zip(both.tolist(), _plans(cols, out, score, both, n, gi, base, fixed), strict=True))
                plans = [made[i] for i in sel.tolist()]
                best.add(plans)
                count_best.add(plans[:8])
                count_front = _merge_front(count_front + [made[i] for i in pf.tolist()])
            base += fits.size
        res.n_evaluated += en.n_legal
        res.n_timed += n_timed
        res.n_feasible += n_feas
        res.count_stats[n] = {"n_candidates": en.n_candidates, "n_evaluated": en.n_legal, "n_feasible": n_feas}
        if count_best.items:
            res.best_by_gpus[n] = count_best.items[0]
        front = _merge_front(front + count_front, by_count=True)
    res.rejected_by_rule = {r: c for r, c in sorted(rule_tot.items(), key=lambda kv: -kv[1]) if c}
    res.rejected_by_memory = {c: k for c, k in sorted(mem_tot.items(), key=lambda kv: -kv[1]) if k}
    res.top = best.items
    res.pareto = sorted(front, key=lambda p: (p.n_accelerators, -p.tokens_per_s))[:pareto_max]
    res.closest = [] if res.n_feasible else closest.items
    res.feasible_scores = np.concatenate(scores) if scores else np.zeros(0)
    res.elapsed_s = time.perf_counter() - t0
    return res


def scaled_cluster(cluster: ClusterSpec, n: int) -> ClusterSpec:
    """``cluster`` with ``n`` accelerators; :class:`ConfigError` when ``n`` is not whole nodes."""
    if n == cluster.n_accelerators:
        return cluster
    try:
        return cluster.with_accelerators(n)
    except ValueError as exc:
        raise ConfigError(f"cluster '{cluster.name}': {exc}") from None


# ===================================================================== explanations
@dataclass
class Change:
    """One strategy change and what :func:`evaluate_training` predicts after it."""

    kind: str  # tp, pp, cp, schedule, recompute, zero, micro_batch, sp, precision, offload, accelerators
    label: str
    strategy: Strategy
    n_accelerators: int
    values: dict[str, float] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return bool(self.values.get("fits", 0.0))

    @property
    def tokens_per_s(self) -> float:
        return self.values.get("tokens_per_s", 0.0)

    def to_json(self) -> dict[str, Any]:
        v = self.values
        return {"kind": self.kind, "change": self.label, "n_accelerators": self.n_accelerators,
                "strategy": self.strategy.model_dump(mode="json"), "fits": self.fits,
                "tokens_per_s": v.get("tokens_per_s"), "step_time_s": v.get("step_time_s"),
                "memory_bytes": v.get("memory_bytes"), "memory_capacity_bytes": v.get("memory_capacity_bytes")}


def _fix_batch(s: dict[str, Any], gb: int) -> dict[str, Any] | None:
    """Keep the global batch: shrink the micro-batch until micro_batch * dp divides it (None: impossible)."""
    dp = s["dp"]
    if gb % dp:
        return None
    mb = s["micro_batch"]
    while mb > 1 and gb % (mb * dp):
        mb -= 1
    s["micro_batch"] = mb
    if dp == 1:
        s["zero"], s["hsdp"] = 0, False
    if s["tp"] == 1:
        s["sp"] = False
    if s["pp"] == 1:
        s["schedule"], s["vpp"] = "1f1b", 1
    return s


def neighbours(model: ModelSpec, cluster: ClusterSpec, strategy: Strategy, seq_len: int, framework: str | Framework,
               *, more_accelerators: bool = True) -> list[Change]:
    """Legal one-knob changes of ``strategy`` (tp, pp, cp keep the accelerator count through dp; schedule and
    virtual stages; recompute; ZeRO stage; micro-batch; SP; FP8 where the accelerator has it; 2x/4x/8x
    accelerators through dp or pp)."""
    fw = get_framework(framework) if isinstance(framework, str) else framework
    n = strategy.n_accelerators
    cur = strategy.model_dump()
    gb = strategy.global_batch
    out: list[tuple[str, str, dict[str, Any], int]] = []

    def add(kind: str, label: str, upd: dict[str, Any], n_acc: int = n) -> None:
        new = _fix_batch({**cur, **upd}, gb)
        if new is not None and new != cur:
            out.append((kind, label, new, n_acc))

    mp = strategy.tp * strategy.pp * strategy.cp
    for axis in ("tp", "pp", "cp"):
        for v in divisors(n):
            if v == cur[axis]:
                continue
            rest = mp // cur[axis] * v
            if n % rest:
                continue
            dp = n // rest
            add(axis, f"{axis} {cur[axis]} -> {v} (dp {strategy.dp} -> {dp})",
                {axis: v, "dp": dp, "sp": strategy.sp or (axis == "tp" and strategy.tp == 1)})
    if strategy.pp > 1:
        for sched in fw.schedules:
            if sched == "interleaved":
                for v in range(2, fw.search.max_vpp + 1):
                    if (sched, v) != (strategy.schedule, strategy.vpp):
                        add("schedule", f"schedule {strategy.schedule} -> interleaved, vpp {v}",
                            {"schedule": sched, "vpp": v})
            elif sched != strategy.schedule:
                add("schedule", f"schedule {strategy.schedule} -> {sched}", {"schedule": sched, "vpp": 1})
    for rc in RECOMPUTES:
        if rc != strategy.recompute:
            add("recompute", f"recompute {strategy.recompute} -> {rc}", {"recompute": rc})
    if strategy.dp > 1:
        for z in fw.zero_stages:
            if z != strategy.zero:
                add("zero", f"ZeRO stage {strategy.zero} -> {z}", {"zero": z, "hsdp": strategy.hsdp and z >= 2})
    for mb in divisors(gb // strategy.dp) if gb % strategy.dp == 0 else []:
        if mb != strategy.micro_batch:
            add("micro_batch", f"micro-batch {strategy.micro_batch} -> {mb}", {"micro_batch": mb})
    if strategy.tp > 1 and fw.search.sequence_parallel:
        add("sp", f"sequence parallel {'on -> off' if strategy.sp else 'off -> on'}", {"sp": not strategy.sp})
    for tier in fw.offload.optimizer:
        if tier != strategy.offload:
            add("offload", f"offload optimizer states {strategy.offload} -> {tier}", {"offload": tier})
    if strategy.zero == 3 or 3 in fw.zero_stages and strategy.dp > 1:
        for tier in fw.offload.params:
            if tier != strategy.offload_params:
                add("offload", f"offload parameters {strategy.offload_params} -> {tier} (ZeRO-3)",
                    {"offload_params": tier, "zero": 3, "hsdp": strategy.hsdp})
    if strategy.precision != "fp8" and "fp8" in cluster.accelerator.peak_flops:
        add("precision", f"precision {strategy.precision} -> fp8", {"precision": "fp8"})
    if more_accelerators:
        for k in (2, 4, 8):
            n2 = n * k
            if n2 > MAX_ACCELERATORS or (n2 > cluster.per_node and n2 % cluster.per_node):
                continue
            add("accelerators", f"{n2} accelerators (dp {strategy.dp} -> {strategy.dp * k})",
                {"dp": strategy.dp * k}, n2)
            top_zero = max(fw.zero_stages)
            if top_zero > strategy.zero:
                add("accelerators", f"{n2} accelerators (dp {strategy.dp} -> {strategy.dp * k}, ZeRO stage "
                    f"{strategy.zero} -> {top_zero})", {"dp": strategy.dp * k, "zero": top_zero}, n2)
            add("accelerators", f"{n2} accelerators (pp {strategy.pp} -> {strategy.pp * k})",
                {"pp": strategy.pp * k}, n2)
    changes: list[Change] = []
    seen: set[tuple[int, tuple[Any, ...]]] = set()
    for kind, label, upd, n_acc in out:
        key = (n_acc, tuple(sorted(upd.items())))
        if key in seen:
            continue
        seen.add(key)
        try:
            st = Strategy(**upd)
        except ValueError:
            continue
        changes.append(Change(kind, label, st, n_acc))
    return changes


def price_changes(model: ModelSpec, cluster: ClusterSpec, changes: list[Change], workload: Workload,
                  framework: str | Framework, layer: str = "curves", *, legal_only: bool = True) -> list[Change]:
    """Drop the illegal changes (the framework's rules) and price the rest through evaluate_training, one
    call per accelerator count."""
    fw = get_framework(framework) if isinstance(framework, str) else framework
    kept: list[Change] = []
    for n in sorted({c.n_accelerators for c in changes}):
        group = [c for c in changes if c.n_accelerators == n]
        cl = scaled_cluster(cluster, n)
        s = StrategyArrays.from_strategies([c.strategy for c in group])
        if legal_only:
            broken = np.zeros(len(group), dtype=bool)
            for m in legality_masks(model, cl, s, workload.seq_len, framework=fw).values():
                broken |= m
            group = [c for c, b in zip(group, broken, strict=True) if not b]
            if not group:
                continue
            s = StrategyArrays.from_strategies([c.strategy for c in group])
        out = evaluate_training(model, cl, s, workload, fw, layer=layer)  # type: ignore[arg-type]
        for i, c in enumerate(group):
            c.values = {k: float(np.asarray(v, dtype=float).reshape(-1)[i] if np.ndim(v) else v)
                        for k, v in out.items()}
            kept.append(c)
    return kept


@dataclass
class Fixes:
    """Ways to make a plan that does not fit fit, ranked by predicted tokens/s per accelerator after the fix."""

    overflow_bytes: float
    overflow_component: str
    fixes: list[Change]  # single changes that fit, most tokens/s per accelerator first
    best_plan: Plan | None = None  # the planner's best at the same or the nearest larger accelerator count
    best_plan_note: str = ""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"overflow_bytes": self.overflow_bytes, "overflow_component": self.overflow_component,
                "fixes": [f.to_json() for f in self.fixes], "notes": self.notes,
                "best_plan": None if self.best_plan is None else {
                    "note": self.best_plan_note, "n_accelerators": self.best_plan.n_accelerators,
                    "label": self.best_plan.label(), "strategy": self.best_plan.strategy.model_dump(mode="json"),
                    "tokens_per_s": self.best_plan.tokens_per_s, "memory_bytes": self.best_plan.memory_bytes}}


def cheapest_fixes(model: ModelSpec, cluster: ClusterSpec, strategy: Strategy, workload: Workload,
                   framework: str | Framework = "megatron", *, layer: str = "curves", limit: int = 8) -> Fixes:
    """For a strategy that does not fit: the single changes that make it fit, ranked by predicted tokens/s per
    accelerator after the fix (tokens/s for the fixes that keep the accelerator count), and the
    planner's best feasible plan (at the same accelerator count, else the nearest count that has one)."""
    fw = get_framework(framework) if isinstance(framework, str) else framework
    base = price_changes(model, cluster, [Change("none", "as given", strategy, strategy.n_accelerators)],
                         workload, fw, layer, legal_only=False)[0].values
    comps = {c: base[f"mem.{c}"] for c in MEMORY_COMPONENTS}
    priced = price_changes(model, cluster, neighbours(model, cluster, strategy, workload.seq_len, fw),
                           workload, fw, layer)
    # ranked by predicted throughput per accelerator after the fix (the same order as tokens/s for the fixes
    # that keep the accelerator count; a fix that buys more accelerators must earn them)
    fits = sorted([c for c in priced if c.fits], key=lambda c: (-c.tokens_per_s / c.n_accelerators, c.n_accelerators))
    out = Fixes(overflow_bytes=max(base["memory_bytes"] - base["memory_capacity_bytes"], 0.0),
                overflow_component=max(comps, key=lambda c: comps[c]), fixes=fits[:limit])
    out.best_plan, out.best_plan_note = nearest_feasible(model, cluster, strategy.global_batch, workload, fw,
                                                         strategy.n_accelerators, [strategy.precision], layer)
    return out


def nearest_feasible(model: ModelSpec, cluster: ClusterSpec, global_batch: int, workload: Workload,
                     framework: str | Framework, n: int, precisions: Sequence[str] = ("bf16",),
                     layer: str = "curves") -> tuple[Plan | None, str]:
    """The planner's best plan at ``n`` accelerators, else at 2n, 4n, ... (up to 64n), else at the larger
    global batches 2x .. 16x on ``n``: the cheapest way to a feasible plan, with a sentence saying which."""
    tried: list[str] = []
    for k in (1, 2, 4, 8, 16, 32, 64):
        n2 = n * k
        if n2 > MAX_ACCELERATORS or (n2 > cluster.per_node and n2 % cluster.per_node):
            continue
        r = search(model, cluster, global_batch, workload, gpus=[n2], framework=framework, precisions=precisions,
                   top=1, layer=layer)
        if r.best is not None:
            note = "best plan at the same accelerator count" if k == 1 else \
                f"nothing fits on {n} accelerators; the fewest that work (of {', '.join(tried + [str(n2)])}) is {n2}"
            return r.best, note
        tried.append(str(n2))
    for k in (2, 4, 8, 16):
        r = search(model, cluster, global_batch * k, workload, gpus=[n], framework=framework, precisions=precisions,
                   top=1, layer=layer)
        if r.best is not None:
            return r.best, f"nothing fits on up to {tried[-1] if tried else n} accelerators with global batch " \
                f"{global_batch}; global batch {global_batch * k} on {n} works"
    return None, f"no feasible plan on {n} .. {tried[-1] if tried else n} accelerators or with up to 16x the batch"


@dataclass
class Explanation:
    """Where the step time goes against the roofline, and the change that helps most."""

    roofline_s: float  # model FLOPs at peak on every accelerator
    step_time_s: float
    losses: dict[str, float]  # named losses in seconds; roofline + losses = step time
    largest: str
    shrink: Change | None  # the change that shrinks the largest loss most (among those that fit)
    shrink_loss_s: float | None  # the largest loss after that change
    best_change: Change | None  # the single change with the most tokens/s (among those that fit)
    planner_best: Plan | None = None  # the planner's best on the same accelerators
    planner_diff: dict[str, float] = field(default_factory=dict)  # time component deltas, planner - given
    share_faster: float | None = None  # share of the feasible strategies predicted faster than the given one
    n_feasible: int = 0  # feasible strategies on the same accelerators (the planner's space)

    def to_json(self) -> dict[str, Any]:
        return {"roofline_s": self.roofline_s, "step_time_s": self.step_time_s, "losses_s": self.losses,
                "largest_loss": self.largest, "shrink_largest": None if self.shrink is None else {
                    **self.shrink.to_json(), "loss_after_s": self.shrink_loss_s},
                "best_single_change": None if self.best_change is None else self.best_change.to_json(),
                "planner_best": None if self.planner_best is None else {
                    "label": self.planner_best.label(), "strategy": self.planner_best.strategy.model_dump(mode="json"),
                    "tokens_per_s": self.planner_best.tokens_per_s, "step_time_s": self.planner_best.step_time_s,
                    "time_component_deltas_s": self.planner_diff},
                "rank": None if self.share_faster is None else {
                    "share_faster": self.share_faster, "n_feasible": self.n_feasible}}


LOSS_NAMES = ("pipeline bubble", "exposed communication", "recompute", "low GEMM/attention efficiency",
              "memory-bound ops and overheads", "offload traffic and CPU optimizer")


def roofline_losses(values: dict[str, float], model: ModelSpec, cluster: ClusterSpec, strategy: Strategy,
                    seq_len: int) -> tuple[float, dict[str, float]]:
    """Split a step (``values`` from evaluate_training) into the roofline time (model FLOPs at dense peak on
    every accelerator) and named losses that add up to the rest."""
    peak = cluster.accelerator.peak(strategy.precision)
    roof = values["model_flops_per_token"] * strategy.global_batch * seq_len / (strategy.n_accelerators * peak)
    t = {c: values[f"time.{c}"] for c in TIME_COMPONENTS}
    losses = {
        "pipeline bubble": t["pipeline_bubble"],
        "exposed communication": sum(t[c] for c in COMM_COMPONENTS),
        "recompute": t["recompute"],
        "low GEMM/attention efficiency": t["gemm"] + t["attention"] - roof,
        "memory-bound ops and overheads": t["elementwise"] + t["overhead"] + t["optimizer"],
        "offload traffic and CPU optimizer": t["offload"],
    }
    return roof, losses


def explain(model: ModelSpec, cluster: ClusterSpec, strategy: Strategy, workload: Workload,
            framework: str | Framework = "megatron", *, layer: str = "curves", compare: bool = True) -> Explanation:
    """Name the largest loss of a plan against the roofline, the change that shrinks it most, the single
    change that gains the most, and (``compare``) how the planner's best on the same accelerators differs."""
    fw = get_framework(framework) if isinstance(framework, str) else framework
    base = price_changes(model, cluster, [Change("none", "as given", strategy, strategy.n_accelerators)],
                         workload, fw, layer, legal_only=False)[0].values
    roof, losses = roofline_losses(base, model, cluster, strategy, workload.seq_len)
    largest = max(losses, key=lambda k: losses[k])
    cands = [c for c in price_changes(model, cluster, neighbours(model, cluster, strategy, workload.seq_len, fw,
                                                                 more_accelerators=False), workload, fw, layer)
             if c.fits]
    shrink = shrink_loss = best_change = None
    if cands:
        after = [roofline_losses(c.values, model, cluster, c.strategy, workload.seq_len)[1][largest] for c in cands]
        i = min(range(len(cands)), key=lambda j: (after[j], -cands[j].tokens_per_s))
        if after[i] < losses[largest]:
            shrink, shrink_loss = cands[i], after[i]
        best_change = max(cands, key=lambda c: c.tokens_per_s)
        if best_change.tokens_per_s <= base["tokens_per_s"]:
            best_change = None
    ex = Explanation(roofline_s=roof, step_time_s=base["step_time_s"], losses=losses, largest=largest,
                     shrink=shrink, shrink_loss_s=shrink_loss, best_change=best_change)
    if compare:
        r = search(model, cluster, strategy.global_batch, workload, gpus=[strategy.n_accelerators], framework=fw,
                   precisions=[strategy.precision], optimizer=strategy.optimizer, top=1, layer=layer)
        if r.n_feasible:
            ex.share_faster, ex.n_feasible = r.rank_fraction(base["tokens_per_s"]), r.n_feasible
        if r.best is not None and r.best.tokens_per_s > base["tokens_per_s"]:
            ex.planner_best = r.best
            diff = {c: r.best.values[f"time.{c}"] - base[f"time.{c}"] for c in TIME_COMPONENTS}
            ex.planner_diff = dict(sorted(((k, v) for k, v in diff.items() if v), key=lambda kv: kv[1]))
    return ex
