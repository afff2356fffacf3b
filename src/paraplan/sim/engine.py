"""Discrete-event serving simulator at iteration granularity.

Each replica runs iterations back to back; the time of every iteration comes from the inference estimator's
step-time function (:class:`paraplan.infer.StepCost`), never from a formula of its own. Schedulers:

* ``static``: a batch is formed when the replica is idle (FCFS, up to ``max_batch``, KV reserved for the
  longest prompt + output of the batch), prefilled in one iteration and decoded until its longest request is
  done; finished sequences keep their slot (padding) and the batch is returned at its end.
* ``orca``: iteration-level scheduling (Yu et al. 2022): new prompts join the running batch whole, up to
  ``max_tokens`` tokens per iteration; KV is reserved for the maximum length at admission (no preemption).
* ``vllm``: paged KV blocks allocated on demand (Kwon et al. 2023); an iteration is either a prefill of newly
  admitted prompts (prefill first, up to ``max_tokens``) or a decode step of every running request; when a
  decode step needs a block that is not free the most recently admitted request is preempted (``recompute``:
  its blocks are freed and its prompt plus generated tokens are prefilled again later; ``swap``: its blocks are
  copied to host memory over PCIe and back when space frees up).
* ``sarathi``: chunked prefill, stall-free (Agrawal et al. 2024): every iteration runs all decodes plus prompt
  chunks up to a token budget of ``chunk_size``; paged blocks and preemption as ``vllm``.

A router assigns each arrival to a replica (``round_robin``, ``least_loaded``: fewest requests queued or
running, ``random``). Runs of identical decode-only iterations are advanced in one step with the closed-form
sum of their times (the step time is linear in the context sum), which is what makes 100 000 requests take
seconds; iterations are still priced one by one (the sum is exact).
"""

from __future__ import annotations

import heapq
import math
import time as _time
from collections import deque
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ParaplanError
from ..infer import (
    InferenceConfig,
    StepCost,
    engine_error_band,
    kv_budget_bytes,
    kv_bytes_per_token,
    weight_bytes_per_accelerator,
)
from ..specs import ClusterSpec, ModelSpec
from .workload import Requests

Scheduler = Literal["static", "vllm", "orca", "sarathi"]
SCHEDULERS: tuple[str, ...] = ("static", "vllm", "orca", "sarathi")
ROUTERS: tuple[str, ...] = ("round_robin", "least_loaded", "random")

# request status codes
PENDING, DONE, REJECTED = 0, 1, 2


class SimulationError(ParaplanError, ValueError):
    """A serving configuration the simulator cannot run (the message names the value)."""


class SimConfig(BaseModel):
    """Scheduler, batching limits, KV policy and what to record."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    scheduler: Scheduler = "vllm"
    replicas: int = Field(1, ge=1)
    router: Literal["round_robin", "least_loaded", "random"] = "least_loaded"
    max_batch: int = Field(256, ge=1)  # sequences in flight per replica
    max_tokens: int = Field(8192, ge=1)  # tokens per iteration (vllm/orca prefill budget)
    chunk_size: int = Field(512, ge=1)  # sarathi token budget per iteration (decodes + prompt chunks)
    chunked_prefill: bool | None = None  # split prompts over iterations (default: only sarathi)
    preemption: Literal["recompute", "swap"] = "recompute"
    swap_space_gb: float = Field(4.0, ge=0.0)  # host swap space per accelerator
    watermark: float = Field(0.01, ge=0.0, lt=1.0)  # share of blocks kept free when admitting (vLLM)
    kv_blocks: int | None = Field(None, ge=1)  # override the KV capacity (blocks per replica)
    max_output: int | None = Field(None, ge=1)  # orca reservation length; default: the model's context
    horizon_s: float | None = Field(None, gt=0.0)  # stop time; None: run until every request is done
    trace_iterations: int = Field(0, ge=0)  # Chrome-trace events for the first N iterations of each replica
    timeseries_points: int = Field(200, ge=2)
    seed: int = 0


class LatencyStats(BaseModel):
    model_config = ConfigDict(frozen=True)
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None


class SimResult(BaseModel):
    """Outcome of a simulation. ``counts``: ``arrived = completed + rejected + running + queued``."""

    model_config = ConfigDict(frozen=True)
    model: str
    cluster: str
    config: SimConfig
    inference: InferenceConfig
    workload: str
    counts: dict[str, int]
    rejections: dict[str, int]
    ttft_s: LatencyStats
    tpot_s: LatencyStats
    e2e_s: LatencyStats
    normalized_latency_s: LatencyStats  # e2e / output tokens (NanoFlow, vLLM papers)
    duration_s: float  # first arrival to the end (last completion, or the horizon)
    output_tokens_per_s: float
    total_tokens_per_s: float
    requests_per_s: float
    output_tokens_per_s_per_accelerator: float
    slo_ttft_s: float | None = None
    slo_tpot_s: float | None = None
    goodput_requests_per_s: float | None = None
    slo_attainment: float | None = None
    kv_blocks_per_replica: int
    block_size: int
    kv_utilization_mean: float
    kv_utilization_max: float
    mean_batch: float
    #: median end-to-end latency of the requests arriving in each quarter of the arrival window; a queue that keeps
    #: growing (overload) shows as a rising sequence
    e2e_by_arrival_quarter_s: list[float | None] = []
    overloaded: bool = False  # last quarter's median e2e > 2x the first quarter's + 1 s
    preemptions: int
    iterations: int
    timeseries: dict[str, list[float]]
    trace_events: list[dict[str, Any]] = []
    wall_time_s: float = 0.0
    assumptions: list[str] = []
    #: p90 APE of published runs of the engine kind ``error_band_engine`` after the fit (see
    #: :func:`paraplan.infer.engine_error_band`); None for the spec layer
    error_band_pct: float | None = None
    error_band_engine: str | None = None

    def chrome_trace(self) -> dict[str, Any]:
        """Chrome/Perfetto trace JSON (``chrome://tracing``) of the recorded iterations."""
        return {"traceEvents": self.trace_events, "displayTimeUnit": "ms"}


def _stats(x: np.ndarray) -> LatencyStats:
    if x.size == 0:
        return LatencyStats(mean=None, p50=None, p90=None, p99=None)
    p = np.percentile(x, [50, 90, 99])
    return LatencyStats(mean=float(np.mean(x)), p50=float(p[0]), p90=float(p[1]), p99=float(p[2]))


class _Sim:
    """Shared request state for all replicas (plain lists: the hot loops index them)."""

    def __init__(self, req: Requests) -> None:
        n = len(req)
        self.arr = req.arrival.astype(float).tolist()
        self.P = req.input_len.astype(int).tolist()
        self.O = req.output_len.astype(int).tolist()
        self.first = [math.nan] * n
        self.fin = [math.nan] * n
        self.status = [PENDING] * n
        self.reason: dict[int, str] = {}
        self.gen = [0] * n  # output tokens produced so far
        self.tgt = list(self.P)  # tokens to prefill (prompt, plus generated ones after a recompute preemption)
        self.pdone = [0] * n  # prompt tokens prefilled so far (chunked prefill)
        self.npre = [0] * n


class _Replica:
    def __init__(self, idx: int, sim: _Sim, cost: StepCost, cfg: SimConfig, total_blocks: int, block_size: int,
                 block_bytes: float, pcie_bw: float, swap_blocks: int, reserve_tokens: int, sample_dt: float) -> None:
        self.idx, self.sim, self.cost, self.cfg = idx, sim, cost, cfg
        self.sched = cfg.scheduler
        self.chunked = cfg.chunked_prefill if cfg.chunked_prefill is not None else cfg.scheduler == "sarathi"
        self.total = total_blocks
        self.bs = block_size
        self.block_bytes = block_bytes
        self.pcie_bw = pcie_bw
        self.swap_cap = swap_blocks
        self.swap_used = 0
        self.reserve_tokens = reserve_tokens
        self.water = int(cfg.watermark * total_blocks)
        self.waiting: deque[int] = deque()
        self.prefilling: list[int] = []
        self.running: dict[int, tuple[int, int, int]] = {}  # rid -> (decode clock at start, cached then, end)
        self.heap: list[tuple[int, int]] = []  # (decode clock at which it finishes, rid)
        self.swapped: deque[tuple[int, int]] = deque()  # (rid, cached tokens)
        self.reserved: dict[int, int] = {}  # orca/static: blocks reserved per request
        self.phase = [0] * block_size
        self.used = 0
        self.ctx_sum = 0
        self.dec_it = 0
        self.t = 0.0
        self.iters = 0
        self.busy_time = 0.0
        self.batch_time = 0.0  # integral of running sequences over time
        self.kv_time = 0.0  # integral of used blocks over time
        self.preemptions = 0
        self.pending_cost = 0.0  # swap transfers charged to the next iteration
        self.static_end = -1  # decode clock at which the current static batch ends
        self.static_batch: list[int] = []

        self.trace: list[dict[str, Any]] = []
        self.ts: dict[str, list[float]] = {"t": [], "kv_utilization": [], "queue": [], "running": [],
                                           "replica": []}
        self.sample_dt = sample_dt
        self.next_sample = 0.0
        self._pa_cache: dict[tuple[int, int], float] = {}

    # ------------------------------------------------------------------ helpers
    def load(self) -> int:
        return len(self.waiting) + len(self.prefilling) + len(self.running) + len(self.swapped)

    def has_work(self) -> bool:
        return bool(self.waiting or self.prefilling or self.running or self.swapped)

    def add(self, rid: int, t: float) -> None:
        if not self.has_work() and self.t < t:
            self.t = t
        self.waiting.append(rid)

    def _blocks(self, tokens: int) -> int:
        return -(-tokens // self.bs)

    def _pattn(self, q: int, kv: int) -> float:
        key = (q, kv)
        v = self._pa_cache.get(key)
        if v is None:
            v = self.cost.prefill_attention(np.array([float(q)]), np.array([float(kv)]))
            if len(self._pa_cache) < 200_000:
                self._pa_cache[key] = v
        return v

    def _sample(self, t: float) -> None:
        if t >= self.next_sample:
            ts = self.ts
            ts["t"].append(t)
            ts["kv_utilization"].append(self.used / self.total if self.total else 0.0)
            ts["queue"].append(float(len(self.waiting) + len(self.swapped)))
            ts["running"].append(float(len(self.running) + len(self.prefilling)))
            ts["replica"].append(float(self.idx))
            self.next_sample = t + self.sample_dt

    def _record(self, start: float, dur: float, kind: str, n_dec: int, n_pref_tok: int) -> None:
        if self.iters <= self.cfg.trace_iterations:
            self.trace.append({"name": kind, "cat": kind, "ph": "X", "ts": start * 1e6, "dur": dur * 1e6,
                               "pid": self.idx, "tid": 0,
                               "args": {"iteration": self.iters, "decode_seqs": n_dec,
                                        "prefill_tokens": n_pref_tok, "kv_blocks_used": self.used,
                                        "queue": len(self.waiting)}})

    def _account(self, dur: float, n_seqs: int) -> None:
        self.busy_time += dur
        self.batch_time += dur * n_seqs
        self.kv_time += dur * self.used

    # ------------------------------------------------------------------ decode bookkeeping
    def _start_decode(self, rid: int, cached: int) -> None:
        """``rid`` has ``cached`` tokens in its cache and produced sim.gen[rid] tokens; decode the rest."""
        sim = self.sim
        fit = self.dec_it + sim.O[rid] - sim.gen[rid]
        self.running[rid] = (self.dec_it, cached, fit)
        self.ctx_sum += cached
        if self.sched in ("vllm", "sarathi"):
            self.phase[(self.dec_it - cached) % self.bs] += 1
        heapq.heappush(self.heap, (fit, rid))

    def _release(self, rid: int) -> int:
        """Remove a decoding request; returns its cached tokens."""
        s, c0, _ = self.running.pop(rid)
        ctx = c0 + self.dec_it - s
        self.ctx_sum -= ctx
        if self.sched in ("vllm", "sarathi"):
            self.phase[(s - c0) % self.bs] -= 1
            self.used -= self._blocks(ctx)
        else:
            self.used -= self.reserved.pop(rid, 0)
        return ctx

    def _finish(self, rid: int, t: float) -> None:
        sim = self.sim
        sim.fin[rid] = t
        sim.status[rid] = DONE

    def _pop_finished(self, t_end: float) -> None:
        heap = self.heap
        run = self.running
        while heap and heap[0][0] <= self.dec_it:
            fit, rid = heapq.heappop(heap)
            st = run.get(rid)
            if st is None or st[2] != fit:
                continue  # stale entry (preempted, restarted)
            self._release(rid)
            self.sim.gen[rid] = self.sim.O[rid]
            if self.sched != "static":
                self._finish(rid, t_end)

    def _gen_now(self, rid: int, st: tuple[int, int, int]) -> int:
        # invariant of a decoding request: cached tokens = prompt + generated - 1 (the newest is not cached yet)
        return st[1] + self.dec_it - st[0] - self.sim.P[rid] + 1

    # ------------------------------------------------------------------ preemption (paged schedulers)
    def _preempt_one(self) -> None:
        rid = next(reversed(self.running))
        sim = self.sim
        sim.gen[rid] = self._gen_now(rid, self.running[rid])
        ctx = self._release(rid)
        self.preemptions += 1
        sim.npre[rid] += 1
        nb = self._blocks(ctx)
        if self.cfg.preemption == "swap" and self.swap_used + nb <= self.swap_cap:
            self.swap_used += nb
            self.pending_cost += nb * self.block_bytes / self.pcie_bw
            self.swapped.append((rid, ctx))
        else:
            sim.tgt[rid] = sim.P[rid] + sim.gen[rid]
            sim.pdone[rid] = 0
            self.waiting.appendleft(rid)

    def _swap_in(self) -> None:
        while self.swapped and len(self.running) < self.cfg.max_batch:
            rid, ctx = self.swapped[0]
            nb = self._blocks(ctx)
            if self.used + nb > self.total - self.water:
                return
            self.swapped.popleft()
            self.swap_used -= nb
            self.used += nb
            self.pending_cost += nb * self.block_bytes / self.pcie_bw
            # resume: ctx tokens cached, gen already counted; keep the decode-start convention
            self._start_decode(rid, ctx)

    # ------------------------------------------------------------------ one iteration / a run of them
    def step(self, until: float) -> bool:
        """Run iterations that start before ``until``. Returns False when idle or past ``until``."""
        if self.t >= until:
            return False
        if self.sched == "static":
            return self._step_static(until)
        if self.swapped:
            self._swap_in()
        sched = self.sched
        if sched == "vllm":
            if self.waiting and len(self.running) < self.cfg.max_batch and self._prefill_vllm():
                return True
        elif sched in ("sarathi", "orca"):
            if (self.prefilling or (self.waiting and self._admissible_head())) and self._mixed():
                return True
        if self.running:
            self._decode(until)
            return True
        if not self.has_work():
            self.t = max(self.t, until) if math.isfinite(until) else self.t
            return False
        # work exists but nothing can run (e.g. a prompt waiting for blocks held by nobody): should not happen
        raise SimulationError("scheduler deadlock: requests wait but nothing can run (KV capacity too small?)")

    def _admissible_head(self) -> bool:
        if len(self.running) + len(self.prefilling) >= self.cfg.max_batch:
            return False
        rid = self.waiting[0]
        if self.sched == "orca":
            return self.used + self._blocks(self._orca_tokens(rid)) <= self.total
        return self.used + 1 <= self.total - self.water

    def _orca_tokens(self, rid: int) -> int:
        """Orca reserves the maximum length at admission: prompt + the output cap, within the context."""
        sim = self.sim
        cap = self.cfg.max_output
        want = self.reserve_tokens if cap is None else min(self.reserve_tokens, sim.P[rid] + cap)
        return max(want, sim.tgt[rid] + 1)

    def _prefill_vllm(self) -> bool:
        sim = self.sim
        admitted: list[int] = []
        tok = 0
        pattn = 0.0
        nmax = self.cfg.max_batch - len(self.running)
        while self.waiting and len(admitted) < nmax:
            rid = self.waiting[0]
            need = sim.tgt[rid]
            nb = self._blocks(need)
            if admitted and tok + need > self.cfg.max_tokens:
                break
            if self.used + nb > self.total - self.water:
                break
            self.waiting.popleft()
            self.used += nb
            admitted.append(rid)
            tok += need
            pattn += self._pattn(need, need)
        if not admitted:
            return False
        n = len(admitted)
        dur = self.cost.time(tok, n, 0, 0.0, pattn) + self.pending_cost
        self.pending_cost = 0.0
        start = self.t
        t_end = start + dur
        self.iters += 1
        self._record(start, dur, "prefill", 0, tok)
        self._account(dur, n + len(self.running))
        self.t = t_end
        for rid in admitted:
            need = sim.tgt[rid]
            sim.gen[rid] += 1
            if math.isnan(sim.first[rid]):
                sim.first[rid] = t_end
            if sim.gen[rid] >= sim.O[rid]:
                self.used -= self._blocks(need)
                self._finish(rid, t_end)
                continue
            self._start_decode(rid, need)
        self._sample(t_end)
        return True

    def _mixed(self) -> bool:
        """Sarathi / Orca iteration: every decode plus prompt work within the token budget."""
        sim = self.sim
        cfg = self.cfg
        orca = self.sched == "orca"
        preempted = False
        if self.running and not orca:
            preempted = not self._decode_blocks()
        n_dec = len(self.running)
        budget = (cfg.max_tokens if orca else cfg.chunk_size) - n_dec
        chunks: list[tuple[int, int]] = []
        tok = 0
        pattn = 0.0
        # continue partially prefilled prompts first, then admit new ones
        for rid in self.prefilling:
            if budget <= 0:
                break
            d = sim.pdone[rid]
            q = min(sim.tgt[rid] - d, budget)
            extra = 0 if orca else self._blocks(d + q) - self._blocks(d)
            if self.used + extra > self.total:
                break
            self.used += extra
            chunks.append((rid, q))
            budget -= q
            tok += q
            pattn += self._pattn(q, d + q)
        while not preempted and self.waiting and budget > 0 and n_dec + len(self.prefilling) < cfg.max_batch:
            rid = self.waiting[0]
            need = sim.tgt[rid]
            if orca:
                if chunks and tok + need > cfg.max_tokens and not self.chunked:
                    break
                nb = self._blocks(self._orca_tokens(rid))
                if self.used + nb > self.total:
                    break
                self.reserved[rid] = nb
                q = min(need, budget) if self.chunked else need
            else:
                q = min(need, budget)
                nb = self._blocks(q)
                if self.used + nb > self.total - self.water:
                    break
            self.waiting.popleft()
            self.used += nb
            sim.pdone[rid] = 0
            self.prefilling.append(rid)
            chunks.append((rid, q))
            budget -= q
            tok += q
            pattn += self._pattn(q, q)
        if not chunks and not n_dec:
            return False
        completing = [rid for rid, q in chunks if sim.pdone[rid] + q >= sim.tgt[rid]]
        n_smp = n_dec + len(completing)
        dur = self.cost.time(tok + n_dec, n_smp, n_dec, float(self.ctx_sum + n_dec), pattn) + self.pending_cost
        self.pending_cost = 0.0
        start = self.t
        t_end = start + dur
        self.iters += 1
        self._record(start, dur, "mixed" if n_dec else "prefill", n_dec, tok)
        self._account(dur, n_dec + len(self.prefilling))
        self.t = t_end
        if n_dec:
            self.dec_it += 1
            self.ctx_sum += n_dec
            self._pop_finished(t_end)
        done_set = set(completing)
        for rid, q in chunks:
            sim.pdone[rid] += q
        if done_set:
            self.prefilling = [r for r in self.prefilling if r not in done_set]
            for rid in completing:
                need = sim.tgt[rid]
                sim.gen[rid] += 1
                if math.isnan(sim.first[rid]):
                    sim.first[rid] = t_end
                if sim.gen[rid] >= sim.O[rid]:
                    self.used -= self.reserved.pop(rid, 0) if orca else self._blocks(need)
                    self._finish(rid, t_end)
                    continue
                self._start_decode(rid, need)
        self._sample(t_end)
        return True

    def _decode_blocks(self) -> bool:
        """Make room for this decode step's new blocks (preempting if needed). True if nobody was preempted."""
        bs = self.bs
        ok = True
        while self.running:
            new = self.phase[self.dec_it % bs]
            if self.used + new <= self.total:
                self.used += new
                return ok
            ok = False
            self._preempt_one()
        return ok

    def _decode(self, until: float) -> None:
        cfg = self.cfg
        paged = self.sched in ("vllm", "sarathi")
        if paged:
            self._decode_blocks()
            if not self.running:
                return
        n = len(self.running)
        ctx = float(self.ctx_sum + n)
        k = 1
        if self.pending_cost == 0.0 and self.iters >= cfg.trace_iterations and self.cost.linear_ok:
            k = self._run_length(n, until)
        if k <= 1:
            dur = self.cost.time(n, n, n, ctx) + self.pending_cost
            self.pending_cost = 0.0
            start = self.t
            self.iters += 1
            self._record(start, dur, "decode", n, 0)
            self._account(dur, n)
            self.t = start + dur
            self.dec_it += 1
            self.ctx_sum += n
            self._pop_finished(self.t)
            self._sample(self.t)
            return
        # a run of k decode steps: the first step's blocks are already booked, book the other k - 1
        a0 = self.cost.time(n, n, n, ctx)
        slope = self.cost.dec_attn_per_token
        total = k * a0 + slope * n * k * (k - 1) / 2.0
        if paged:
            self.used += self._new_blocks(k) - self.phase[self.dec_it % self.bs]
        self.iters += k
        self.busy_time += total
        self.batch_time += total * n
        self.kv_time += total * self.used
        self.t += total
        self.dec_it += k
        self.ctx_sum += n * k
        self._pop_finished(self.t)
        self._sample(self.t)

    def _new_blocks(self, k: int) -> int:
        """Blocks the running requests allocate over the next ``k`` decode steps (from this step on)."""
        bs = self.bs
        n = len(self.running)
        full, rem = divmod(k, bs)
        s = full * n
        ph = self.phase
        base = self.dec_it
        for j in range(rem):
            s += ph[(base + j) % bs]
        return s

    def _run_length(self, n: int, until: float) -> int:
        """How many identical decode steps can run without a scheduling event (>= 1)."""
        # no prompt can start during the run
        if self.sched == "vllm" and self.waiting and len(self.running) < self.cfg.max_batch:
            rid = self.waiting[0]
            if self.used + self._blocks(self.sim.tgt[rid]) <= self.total - self.water:
                return 1
        if self.sched in ("sarathi", "orca") and (self.prefilling or (self.waiting and self._admissible_head())):
            return 1
        if self.swapped:
            return 1
        # next completion
        heap = self.heap
        while heap and heap[0][1] not in self.running:
            heapq.heappop(heap)
        if not heap:
            return 1
        k = heap[0][0] - self.dec_it
        if self.sched == "static":
            k = min(k, self.static_end - self.dec_it)
        if k <= 1:
            return 1
        # KV blocks (paged): the first step is booked already
        if self.sched in ("vllm", "sarathi"):
            free = self.total - self.used + self.phase[self.dec_it % self.bs]
            k = min(k, self._steps_within(free, k))
        # iterations must start before `until`
        if math.isfinite(until):
            ctx = float(self.ctx_sum + n)
            a0 = self.cost.time(n, n, n, ctx)
            b = self.cost.dec_attn_per_token * n
            dt = until - self.t
            # sum of the first m durations: m a0 + b m (m - 1) / 2 < dt for m = k - 1 starts after the first
            if b > 0:
                qa, qb = b / 2.0, a0 - b / 2.0
                m = (-qb + math.sqrt(qb * qb + 4 * qa * dt)) / (2 * qa)
            else:
                m = dt / a0 if a0 > 0 else float(k)
            m_int = int(m)
            while m_int > 0 and m_int * a0 + b * m_int * (m_int - 1) / 2.0 >= dt:
                m_int -= 1
            k = min(k, m_int + 1)
        return max(k, 1)

    def _steps_within(self, free: int, kmax: int) -> int:
        """Largest k <= kmax whose block allocations fit in ``free`` blocks."""
        n = len(self.running)
        bs = self.bs
        if n == 0:
            return kmax
        cycles = free // n
        if cycles * bs >= kmax:
            return kmax
        left = free - cycles * n
        k = cycles * bs
        ph = self.phase
        base = self.dec_it
        j = 0
        while j < bs and k < kmax:
            need = ph[(base + k) % bs]
            if need > left:
                break
            left -= need
            k += 1
            j += 1
        return max(k, 1)

    # ------------------------------------------------------------------ static batching
    def _step_static(self, until: float) -> bool:
        sim = self.sim
        cfg = self.cfg
        if self.running:
            self._decode(until)
            if not self.running:
                self._end_static()
            return True
        if not self.waiting:
            self.t = max(self.t, until) if math.isfinite(until) else self.t
            return False
        batch: list[int] = []
        max_p = max_o = 0
        while self.waiting and len(batch) < cfg.max_batch:
            rid = self.waiting[0]
            mp, mo = max(max_p, sim.P[rid]), max(max_o, sim.O[rid])
            if self._blocks(mp + mo) * (len(batch) + 1) > self.total:
                break
            self.waiting.popleft()
            batch.append(rid)
            max_p, max_o = mp, mo
        if not batch:
            raise SimulationError("static batching: a request does not fit the KV cache alone")
        nb = self._blocks(max_p + max_o)
        tok = sum(sim.P[r] for r in batch)
        pattn = sum(self._pattn(sim.P[r], sim.P[r]) for r in batch)
        dur = self.cost.time(tok, len(batch), 0, 0.0, pattn)
        start = self.t
        self.iters += 1
        self.used += nb * len(batch)
        self._record(start, dur, "prefill", 0, tok)
        self._account(dur, len(batch))
        self.t = start + dur
        self.static_batch = batch
        for rid in batch:
            self.reserved[rid] = nb
            sim.gen[rid] = 1
            sim.first[rid] = self.t
        steps = max_o - 1
        if steps <= 0:
            for rid in batch:
                self.used -= self.reserved.pop(rid)
            self._end_static()
            return True
        self.static_end = self.dec_it + steps
        for rid in batch:
            # every sequence is decoded until the longest is done (padding); its cache holds its prompt
            self.running[rid] = (self.dec_it, sim.P[rid], self.static_end)
            self.ctx_sum += sim.P[rid]
            heapq.heappush(self.heap, (self.static_end, rid))
        self._sample(self.t)
        return True

    def _end_static(self) -> None:
        for rid in self.static_batch:
            self._finish(rid, self.t)
        self.static_batch = []


def _kv_blocks(model: ModelSpec, cluster: ClusterSpec, icfg: InferenceConfig, cfg: SimConfig) -> int:
    if cfg.kv_blocks is not None:
        return cfg.kv_blocks
    per_block = kv_bytes_per_token(model, icfg) * icfg.block_size
    return int(kv_budget_bytes(model, cluster, icfg, cfg.max_batch) // per_block)


def simulate_serving(model: ModelSpec, cluster: ClusterSpec, requests: Requests, config: SimConfig | None = None,
                     inference: InferenceConfig | None = None, *, slo_ttft_s: float | None = None,
                     slo_tpot_s: float | None = None, layer: str = "curves",
                     calibration: dict[str, float] | None = None) -> SimResult:
    """Simulate serving ``requests`` on ``config.replicas`` replicas of ``inference.tp * inference.pp``
    accelerators each. Every request ends completed, rejected (with a reason) or still running/queued at the
    horizon; the counts add up to the arrivals."""
    wall0 = _time.perf_counter()
    cfg = config or SimConfig()
    icfg = inference or InferenceConfig()
    from ..infer import check_inference

    check_inference(model, cluster, icfg)
    need_acc = cfg.replicas * icfg.accelerators
    assumptions: list[str] = list(model.caveats)
    if need_acc > cluster.n_accelerators:
        assumptions.append(f"{cfg.replicas} replicas x {icfg.accelerators} accelerators = {need_acc} exceed the "
                           f"cluster's {cluster.n_accelerators}; priced as if available")
    acc = cluster.accelerator
    w = weight_bytes_per_accelerator(model, icfg)
    if w + 2e9 > acc.memory_bytes:
        raise SimulationError(f"the weights of {model.name} need {w / 1e9:.1f} GB per accelerator (tp={icfg.tp}, "
                              f"pp={icfg.pp}, {icfg.weight_bits:g}-bit) but {acc.name} has "
                              f"{acc.memory_bytes / 1e9:.0f} GB; raise tp/pp or lower --weight-bits")
    total_blocks = _kv_blocks(model, cluster, icfg, cfg)
    bs = icfg.block_size
    if total_blocks < 1:
        raise SimulationError(f"no memory left for the KV cache of {model.name} on {acc.name} (tp={icfg.tp}, "
                              f"pp={icfg.pp})")
    n = len(requests)
    sim = _Sim(requests)
    max_ctx = model.max_seq_len
    budget_tokens = cfg.chunk_size if cfg.scheduler == "sarathi" else cfg.max_tokens
    max_tokens_tab = max(budget_tokens, cfg.max_batch) + cfg.max_batch
    if cfg.scheduler in ("vllm", "orca", "static"):
        longest = int(np.max(requests.input_len)) if n else 1
        max_tokens_tab = max(max_tokens_tab, min(longest, max_ctx) * (cfg.max_batch if cfg.scheduler == "static"
                                                                        else 1) + cfg.max_batch)
        max_tokens_tab = max(max_tokens_tab, cfg.max_tokens + cfg.max_batch)
    cost = StepCost(model, cluster, icfg, max_tokens=int(max_tokens_tab), max_seqs=cfg.max_batch + 1,
                    layer=layer, calibration=calibration)  # type: ignore[arg-type]
    reserve = max_ctx  # orca: reserve the whole context per request unless an output cap is given
    block_bytes = kv_bytes_per_token(model, icfg) * bs
    swap_blocks = int(cfg.swap_space_gb * 1e9 // block_bytes) if block_bytes > 0 else 0
    horizon = cfg.horizon_s if cfg.horizon_s is not None else math.inf
    span = float(requests.arrival[-1]) if n else 0.0
    sample_dt = max((horizon if math.isfinite(horizon) else max(span, 1.0) * 1.5) / cfg.timeseries_points, 1e-6)
    reps = [_Replica(i, sim, cost, cfg, total_blocks, bs, block_bytes, acc.pcie_bw * icfg.tp, swap_blocks,
                     reserve, sample_dt) for i in range(cfg.replicas)]
    # admission control at arrival: what can never be served is rejected with a reason
    rejects: dict[str, int] = {}

    def reject(rid: int, why: str) -> None:
        sim.status[rid] = REJECTED
        sim.reason[rid] = why
        rejects[why] = rejects.get(why, 0) + 1

    rng = np.random.default_rng(cfg.seed)
    rr = 0
    arrived = 0
    for rid in range(n):
        ta = sim.arr[rid]
        if ta >= horizon:
            break
        arrived += 1
        p, o = sim.P[rid], sim.O[rid]
        if p + o - 1 > max_ctx:
            reject(rid, f"prompt + output exceed the {max_ctx}-token context")
            continue
        need_blocks = -(-(p + o) // bs)
        if cfg.scheduler == "orca":
            res = reserve if cfg.max_output is None else min(reserve, p + cfg.max_output)
            need_blocks = -(-max(res, p + o) // bs)
        if need_blocks > total_blocks:
            reject(rid, "larger than the whole KV cache")
            continue
        chunked = cfg.chunked_prefill if cfg.chunked_prefill is not None else cfg.scheduler == "sarathi"
        if cfg.scheduler in ("vllm", "orca") and p > cfg.max_tokens and not chunked:
            reject(rid, f"prompt longer than max_tokens={cfg.max_tokens}")
            continue
        if cfg.router == "round_robin":
            r = reps[rr % len(reps)]
            rr += 1
            while r.step(ta):
                pass
        elif cfg.router == "random":
            r = reps[int(rng.integers(len(reps)))]
            while r.step(ta):
                pass
        else:
            for rep in reps:
                while rep.step(ta):
                    pass
            r = min(reps, key=lambda x: (x.load(), x.idx))
        r.add(rid, ta)
    for rep in reps:
        while rep.step(horizon):
            pass
    # ------------------------------------------------------------------ results
    status = np.array(sim.status[:arrived], dtype=int)
    fin = np.array(sim.fin[:arrived])
    end_t = max((r.t for r in reps), default=0.0)
    if math.isfinite(horizon):
        late = (status == DONE) & (fin > horizon)
        status[late] = PENDING
        end_t = horizon
    done = status == DONE
    queued_ids = {rid for r in reps for rid in r.waiting}
    pend_ids = np.nonzero(status == PENDING)[0]
    queued = sum(1 for rid in pend_ids if rid in queued_ids and sim.first[rid] != sim.first[rid])
    running = int(pend_ids.size) - queued
    counts = {"arrived": arrived, "completed": int(done.sum()), "rejected": int((status == REJECTED).sum()),
              "running": running, "queued": queued, "not_arrived": n - arrived}
    arr = np.array(sim.arr[:arrived])
    first = np.array(sim.first[:arrived])
    P = np.array(sim.P[:arrived], dtype=float)
    O = np.array(sim.O[:arrived], dtype=float)
    ttft = (first - arr)[done]
    e2e = (fin - arr)[done]
    multi = done & (O > 1)
    tpot = ((fin - first) / np.maximum(O - 1, 1))[multi]
    norm = (e2e / O[done]) if done.any() else np.array([])
    t0 = float(arr[0]) if arrived else 0.0
    dur = max(end_t - t0, 1e-12)
    out_tok = float(O[done].sum())
    n_acc = cfg.replicas * icfg.accelerators
    good = att = None
    if slo_ttft_s is not None or slo_tpot_s is not None:
        ok = np.ones(arrived, dtype=bool) & done
        if slo_ttft_s is not None:
            ok &= np.where(done, first - arr, np.inf) <= slo_ttft_s
        if slo_tpot_s is not None:
            tp_all = np.where(O > 1, (fin - first) / np.maximum(O - 1, 1), 0.0)
            ok &= np.where(done, tp_all, np.inf) <= slo_tpot_s
        good = float(ok.sum()) / dur
        att = float(ok.sum()) / max(arrived, 1)
    quarters: list[float | None] = []
    if arrived:
        span = float(arr[-1] - arr[0])
        edges = arr[0] + span * np.array([0.0, 0.25, 0.5, 0.75, 1.0 + 1e-12])
        for q in range(4):
            sel = done & (arr >= edges[q]) & (arr < edges[q + 1])
            quarters.append(float(np.median((fin - arr)[sel])) if sel.any() else None)
    q0, q3 = (quarters[0], quarters[3]) if len(quarters) == 4 else (None, None)
    unfinished = counts["running"] + counts["queued"]
    overloaded = bool((q0 is not None and q3 is not None and q3 > 2.0 * q0 + 1.0)
                      or (arrived and unfinished > 0.25 * arrived))
    busy = sum(r.busy_time for r in reps)
    ts: dict[str, list[float]] = {k: [] for k in ("t", "kv_utilization", "queue", "running", "replica")}
    for r in reps:
        for k in ts:
            ts[k].extend(r.ts[k])
    kv_mean = sum(r.kv_time for r in reps) / max(busy, 1e-12) / total_blocks
    kv_max = max(ts["kv_utilization"], default=0.0)
    trace = [e for r in reps for e in r.trace]
    assumptions += [
        f"scheduler {cfg.scheduler}, {cfg.replicas} replica(s) of tp={icfg.tp} pp={icfg.pp}, router {cfg.router}",
        f"KV cache: {total_blocks} blocks of {bs} tokens per replica "
        f"({total_blocks * bs * kv_bytes_per_token(model, icfg) / 1e9:.1f} GB per accelerator)",
        "iteration times from paraplan.infer.StepCost (the estimator's step-time function)",
    ]
    band, band_engine = engine_error_band(icfg.engine, layer)  # type: ignore[arg-type]
    return SimResult(
        model=model.name, cluster=cluster.name, config=cfg, inference=icfg, workload=requests.source,
        counts=counts, rejections=rejects, ttft_s=_stats(ttft), tpot_s=_stats(tpot), e2e_s=_stats(e2e),
        normalized_latency_s=_stats(norm), duration_s=dur, output_tokens_per_s=out_tok / dur,
        total_tokens_per_s=float((O[done] + P[done]).sum()) / dur, requests_per_s=float(done.sum()) / dur,
        output_tokens_per_s_per_accelerator=out_tok / dur / n_acc, slo_ttft_s=slo_ttft_s, slo_tpot_s=slo_tpot_s,
        goodput_requests_per_s=good, slo_attainment=att, kv_blocks_per_replica=total_blocks, block_size=bs,
        kv_utilization_mean=float(kv_mean), kv_utilization_max=float(kv_max),
        mean_batch=float(sum(r.batch_time for r in reps) / max(busy, 1e-12)),
        e2e_by_arrival_quarter_s=quarters, overloaded=overloaded,
        preemptions=sum(r.preemptions for r in reps), iterations=sum(r.iters for r in reps), timeseries=ts,
        trace_events=trace, wall_time_s=_time.perf_counter() - wall0, assumptions=assumptions,
        error_band_pct=band, error_band_engine=band_engine)
