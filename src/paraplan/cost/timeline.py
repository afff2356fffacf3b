"""Pipeline timelines: who computes what, when, on each pipeline stage (pure functions, no I/O).

Built from the same schedules the cost model prices in :mod:`paraplan.cost.pipeline` (GPipe, 1F1B, interleaved
1F1B, zero-bubble ZB-H1), by list-scheduling each stage's ordered passes under their data dependencies: a forward
of micro-batch ``j`` (model chunk ``c``) on stage ``i`` needs that forward on stage ``i - 1`` (or chunk ``c - 1``
on the last stage), a backward needs the backward of the next stage (or chunk ``c + 1`` on the first stage, or
the micro-batch's own last forward). Point-to-point transfers are not drawn (they are priced as ``pp_comm``).

Given the per-micro-batch forward and backward times of one stage (uniform stages), the idle share of the
timeline equals the bubble share the cost model uses, ``bubble_slots / (m + bubble_slots)``:

* GPipe and 1F1B: ``(p - 1)`` micro-batch slots;
* interleaved (``v`` chunks, ``m`` a multiple of ``p``): ``(p - 1) / v`` slots;
* zero-bubble ZB-H1 with the backward split into equal input-gradient (B) and weight-gradient (W) halves and
  ``F = B = W``: ``(p - 1)(F + B - W)`` = one third of the 1F1B bubble.

``tests/test_timeline.py`` checks these identities against :func:`paraplan.cost.pipeline.bubble_slots`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCHEDULE_NAMES = ("gpipe", "1f1b", "interleaved", "zero-bubble")
#: at most this many passes are laid out (p * m * v * 3); larger requests raise ValueError
MAX_OPS = 200_000


@dataclass(frozen=True)
class Interval:
    """One pass on one stage: ``kind`` is ``F`` (forward), ``B`` (backward; input gradient under zero-bubble)
    or ``W`` (weight gradient, zero-bubble only)."""

    stage: int
    micro_batch: int
    kind: str
    chunk: int
    start: float
    end: float

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "micro_batch": self.micro_batch, "kind": self.kind, "chunk": self.chunk,
                "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Timeline:
    schedule: str
    pp: int
    vpp: int
    n_micro: int
    forward_s: float  # per micro-batch, whole stage (all its chunks)
    backward_s: float
    stages: list[list[Interval]]  # per stage, in execution order

    @property
    def makespan_s(self) -> float:
        return max((iv.end for st in self.stages for iv in st), default=0.0)

    def busy_s(self, stage: int) -> float:
        return sum(iv.end - iv.start for iv in self.stages[stage])

    def idle_fraction(self, stage: int | None = None) -> float:
        """Idle share of the makespan on ``stage`` (default: averaged over the stages)."""
        total = self.makespan_s
        if total <= 0:
            return 0.0
        idx = range(self.pp) if stage is None else [stage]
        return sum(1.0 - self.busy_s(i) / total for i in idx) / len(idx)

    def to_json(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "pp": self.pp, "vpp": self.vpp, "n_micro": self.n_micro,
                "forward_s": self.forward_s, "backward_s": self.backward_s, "makespan_s": self.makespan_s,
                "idle_fraction": self.idle_fraction(),
                "stages": [[iv.to_json() for iv in st] for st in self.stages]}


Op = tuple[str, int, int]  # (kind, micro-batch, chunk)


def _orders(schedule: str, p: int, m: int, v: int) -> list[list[Op]]:
    """The ordered passes of each stage."""
    orders: list[list[Op]] = []
    for i in range(p):
        if schedule == "gpipe":
            o = [("F", j, 0) for j in range(m)] + [("B", j, 0) for j in range(m)]
        elif schedule in ("1f1b", "zero-bubble"):
            w = min(p - i - 1, m)
            o = [("F", j, 0) for j in range(w)]
            for j in range(m - w):
                o += [("F", w + j, 0), ("B", j, 0)]
            o += [("B", j, 0) for j in range(m - w, m)]
        elif schedule == "interleaved":
            def fwd(k: int) -> Op:
                g, r = divmod(k, p * v)
                return ("F", g * p + r % p, r // p)

            def bwd(k: int) -> Op:
                g, r = divmod(k, p * v)
                return ("B", g * p + r % p, v - 1 - r // p)

            total = m * v
            w = min((p - i - 1) * 2 + (v - 1) * p, total)
            o = [fwd(k) for k in range(w)]
            for k in range(total - w):
                o += [fwd(w + k), bwd(k)]
            o += [bwd(k) for k in range(total - w, total)]
        else:
            raise ValueError(f"schedule '{schedule}': expected one of {', '.join(SCHEDULE_NAMES)}")
        orders.append(o)
    return orders


def _dep(op: Op, i: int, p: int, v: int) -> tuple[int, Op] | None:
    kind, j, c = op
    if kind == "F":
        if i > 0:
            return i - 1, ("F", j, c)
        return (p - 1, ("F", j, c - 1)) if c > 0 else None
    if kind == "B":
        if i < p - 1:
            return i + 1, ("B", j, c)
        return (0, ("B", j, c + 1)) if c < v - 1 else (p - 1, ("F", j, v - 1))
    return i, ("B", j, c)  # W after its own B


def pipeline_timeline(schedule: str, pp: int, n_micro: int, forward_s: float, backward_s: float,
                      vpp: int = 1) -> Timeline:
    """Per stage, the ordered (micro-batch, F/B/W, chunk, start, end) intervals of one step's pipeline.

    ``forward_s`` / ``backward_s``: one micro-batch's forward / backward on one stage (all its chunks; each of
    the ``vpp`` chunks takes ``1 / vpp`` of them). Zero-bubble splits the backward into B and W halves and runs
    W passes only when no F or B can run (ZB-H1: at most ``p - i`` micro-batches in flight on stage ``i``, as
    1F1B). The interleaved schedule needs ``n_micro`` to be a multiple of ``pp`` (Megatron's rule)."""
    p, m, v = int(pp), int(n_micro), max(int(vpp), 1)
    if p < 1 or m < 1:
        raise ValueError(f"pp and n_micro must be positive (got pp={pp}, n_micro={n_micro})")
    if not (forward_s >= 0 and backward_s >= 0):
        raise ValueError("forward and backward times must be non-negative")
    if schedule != "interleaved":
        v = 1
    elif m % p:
        raise ValueError(f"the interleaved schedule needs the micro-batch count ({m}) to be a multiple of pp ({p})")
    if p * m * v * 3 > MAX_OPS:
        raise ValueError(f"timeline too large to lay out: pp {p} x micro-batches {m} x chunks {v} (at most "
                         f"{MAX_OPS:,} passes)")
    if schedule == "zero-bubble":
        return _zero_bubble(p, m, forward_s, backward_s)
    tf, tb = forward_s / v, backward_s / v
    orders = _orders(schedule, p, m, v)
    done: dict[tuple[int, Op], float] = {}
    free = [0.0] * p
    pos = [0] * p
    out: list[list[Interval]] = [[] for _ in range(p)]
    remaining = sum(len(o) for o in orders)
    while remaining:
        progressed = False
        for i in range(p):
            while pos[i] < len(orders[i]):
                op = orders[i][pos[i]]
                dep = _dep(op, i, p, v)
                if dep is not None and dep not in done:
                    break
                start = max(free[i], done[dep] if dep is not None else 0.0)
                end = start + (tf if op[0] == "F" else tb)
                done[(i, op)] = end
                free[i] = end
                out[i].append(Interval(i, op[1], op[0], op[2], start, end))
                pos[i] += 1
                remaining -= 1
                progressed = True
        if not progressed:  # pragma: no cover - the orders above are deadlock-free
            raise RuntimeError(f"schedule {schedule} deadlocked (pp={p}, m={m}, v={v})")
    return Timeline(schedule, p, v if schedule == "interleaved" else 1, m, forward_s, backward_s, out)


def _zero_bubble(p: int, m: int, tf: float, tbw: float) -> Timeline:
    """ZB-H1 by event-driven list scheduling: B first, then F (in-flight limit ``p - i``), W to fill the gaps."""
    tb = tw = tbw / 2.0
    f_end: dict[tuple[int, int], float] = {}
    b_end: dict[tuple[int, int], float] = {}
    nf, nb, nw = [0] * p, [0] * p, [0] * p
    free = [0.0] * p
    out: list[list[Interval]] = [[] for _ in range(p)]
    total = 3 * m * p
    scheduled = 0
    while scheduled < total:
        # the stage that can start something earliest; ties: lower stage
        best: tuple[float, int, str] | None = None
        for i in range(p):
            cands: list[tuple[float, int, str]] = []
            if nb[i] < nf[i]:  # next backward
                j = nb[i]
                ready = f_end[(i, j)] if i == p - 1 else b_end.get((i + 1, j))
                if ready is not None:
                    cands.append((max(free[i], ready), 0, "B"))
            if nf[i] < m and nf[i] - nb[i] < p - i:
                j = nf[i]
                ready = 0.0 if i == 0 else f_end.get((i - 1, j))
                if ready is not None:
                    cands.append((max(free[i], ready), 1, "F"))
            if nw[i] < nb[i]:
                cands.append((free[i], 2, "W"))
            if not cands:
                continue
            t0 = min(c[0] for c in cands)
            # a W may only start if it does not delay an F/B that is ready now
            pick = min((c for c in cands if c[0] <= t0 + 1e-15), key=lambda c: c[1])
            if pick[2] == "W":
                fb = [c for c in cands if c[2] != "W"]
                if fb and min(c[0] for c in fb) < t0 + tw - 1e-15 and min(c[0] for c in fb) <= t0 + 1e-15:
                    pick = min(fb, key=lambda c: (c[0], c[1]))
            key = (pick[0], i, pick[2])
            if best is None or key[:2] < best[:2]:
                best = key
        assert best is not None
        start, i, kind = best
        if kind == "F":
            j, dur = nf[i], tf
            nf[i] += 1
            f_end[(i, j)] = start + dur
        elif kind == "B":
            j, dur = nb[i], tb
            nb[i] += 1
            b_end[(i, j)] = start + dur
        else:
            j, dur = nw[i], tw
            nw[i] += 1
        free[i] = start + dur
        out[i].append(Interval(i, j, kind, 0, start, start + dur))
        scheduled += 1
    return Timeline("zero-bubble", p, 1, m, tf, tbw, out)


def stage_times(step_components_s: dict[str, float], n_micro: int, recompute_in_backward: bool = True,
                backward_ratio: float = 2.0) -> tuple[float, float]:
    """Per-micro-batch forward and backward time of one stage from a training estimate's time components.

    The cost model's step is ``m * t_mb + bubble + exposed DP communication + optimizer`` (``paraplan.train``),
    so ``t_mb`` is the sum of the other components over ``m``; it is split forward : backward as 1 : 2 (the
    backward's two GEMMs per forward GEMM), recompute going to the backward."""
    excluded = {"pipeline_bubble", "dp_comm", "optimizer"}
    t_mb = sum(v for k, v in step_components_s.items() if k not in excluded) / max(int(n_micro), 1)
    rec = step_components_s.get("recompute", 0.0) / max(int(n_micro), 1) if recompute_in_backward else 0.0
    base = max(t_mb - rec, 0.0)
    fwd = base / (1.0 + backward_ratio)
    return fwd, t_mb - fwd


def estimate_timeline(strategy: dict[str, Any], time_components_s: dict[str, float], n_micro: int,
                      max_micro: int = 64) -> Timeline:
    """The timeline of a training estimate (its ``strategy`` dict and ``time.components_s``), with at most
    ``max_micro`` micro-batches drawn (rounded to a multiple of pp for the interleaved schedule)."""
    pp, vpp = int(strategy.get("pp", 1)), int(strategy.get("vpp", 1))
    schedule = str(strategy.get("schedule", "1f1b"))
    fwd, bwd = stage_times(time_components_s, n_micro)
    m = max(min(int(n_micro), max_micro), 1)
    if schedule == "interleaved":
        m = max(m - m % pp, pp)
    return pipeline_timeline(schedule, pp, m, fwd, bwd, vpp)
