"""The serving simulator: every request is accounted for, KV blocks balance, schedulers behave as documented."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paraplan import catalog
from paraplan.infer import StepCost
from paraplan.sim import (
    Requests,
    SimConfig,
    SimulationError,
    WorkloadError,
    make_requests,
    read_trace,
    sample_lengths,
    simulate_serving,
)
from paraplan.sim import engine as E

M = catalog.get_model("llama-3.1-8b")
C = catalog.get_cluster("h100-sxm:8")


def _reqs(arr: list[float], inp: list[int], out: list[int]) -> Requests:
    return Requests(np.asarray(arr, dtype=float), np.asarray(inp, dtype=np.int64), np.asarray(out, dtype=np.int64))


@pytest.fixture
def replicas(monkeypatch: pytest.MonkeyPatch) -> list:
    """Capture the replica objects a simulation creates (to check their internal invariants)."""
    made: list = []
    init = E._Replica.__init__

    def spy(self, *a, **k):  # type: ignore[no-untyped-def]
        init(self, *a, **k)
        made.append(self)

    monkeypatch.setattr(E._Replica, "__init__", spy)
    return made


def _check_counts(res, n: int) -> None:
    c = res.counts
    assert c["arrived"] + c["not_arrived"] == n
    assert c["completed"] + c["rejected"] + c["running"] + c["queued"] == c["arrived"]
    assert sum(res.rejections.values()) == c["rejected"]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sched=st.sampled_from(["static", "vllm", "orca", "sarathi"]), n=st.integers(1, 120),
       rate=st.sampled_from([0.5, 5.0, 50.0, math.inf]), blocks=st.sampled_from([None, 200, 600]),
       reps=st.integers(1, 3), pre=st.sampled_from(["recompute", "swap"]), seed=st.integers(0, 5))
def test_every_request_is_accounted_for(replicas: list, sched: str, n: int, rate: float, blocks: int | None,
                                        reps: int, pre: str, seed: int) -> None:
    replicas.clear()
    req = make_requests("poisson", rate, n=n, input_dist="lognormal:300:400", output_dist="lognormal:150:200",
                        seed=seed)
    cfg = SimConfig(scheduler=sched, replicas=reps, kv_blocks=blocks, preemption=pre, max_batch=32,
                    swap_space_gb=0.05, chunk_size=256)
    res = simulate_serving(M, C, req, cfg)
    _check_counts(res, n)
    assert res.counts["running"] == res.counts["queued"] == 0  # no horizon: everything drains
    for r in replicas:  # all KV released, nothing left behind
        assert r.used == 0 and r.ctx_sum == 0 and not r.running and not r.waiting and r.swap_used == 0
        assert sum(r.phase) == 0
    done = res.counts["completed"]
    if done:
        assert res.ttft_s.p50 > 0 and res.e2e_s.p99 >= res.e2e_s.p50 >= res.ttft_s.p50 * 0.999


def test_too_long_requests_are_rejected_with_a_reason() -> None:
    req = _reqs([0, 0, 0], [100, 130000, 2000], [50, 5000, 10])
    res = simulate_serving(M, C, req, SimConfig(kv_blocks=100))
    assert res.counts["completed"] == 1 and res.counts["rejected"] == 2
    assert any("context" in k for k in res.rejections)
    assert any("KV cache" in k for k in res.rejections)


def test_horizon_leaves_requests_running_or_queued() -> None:
    req = make_requests("poisson", 200.0, n=2000, input_dist="fixed:512", output_dist="fixed:256", seed=1)
    res = simulate_serving(M, C, req, SimConfig(horizon_s=3.0, max_batch=64))
    _check_counts(res, 2000)
    c = res.counts
    assert c["running"] > 0 and c["queued"] > 0 and c["not_arrived"] > 0
    assert res.duration_s == pytest.approx(3.0)


def test_preemption_recompute_and_swap() -> None:
    req = make_requests("poisson", math.inf, n=300, input_dist="fixed:200", output_dist="fixed:400", seed=0)
    rec = simulate_serving(M, C, req, SimConfig(kv_blocks=400, max_batch=64))
    swp = simulate_serving(M, C, req, SimConfig(kv_blocks=400, max_batch=64, preemption="swap", swap_space_gb=1.0))
    assert rec.preemptions > 0 and swp.preemptions > 0
    assert rec.counts["completed"] == swp.counts["completed"] == 300
    assert rec.kv_utilization_max <= 1.0 + 1e-9
    # orca reserves the whole length up front: no preemption, fewer sequences in flight
    orca = simulate_serving(M, C, req, SimConfig(scheduler="orca", kv_blocks=400, max_batch=64, max_output=400))
    assert orca.preemptions == 0 and orca.mean_batch < rec.mean_batch


def test_continuous_batching_beats_static_and_chunking_cuts_decode_stalls() -> None:
    req = make_requests("poisson", 30.0, n=1500, input_dist="sharegpt", seed=3)
    st_ = simulate_serving(M, C, req, SimConfig(scheduler="static", max_batch=64))
    vl = simulate_serving(M, C, req, SimConfig(scheduler="vllm", max_batch=64))
    sa = simulate_serving(M, C, req, SimConfig(scheduler="sarathi", max_batch=64, chunk_size=256))
    assert vl.e2e_s.p50 < st_.e2e_s.p50
    assert sa.tpot_s.mean < vl.tpot_s.mean  # prefill-only iterations no longer stall the decodes
    assert sa.ttft_s.p50 > 0


def test_router_spreads_load() -> None:
    req = make_requests("poisson", 40.0, n=1200, input_dist="sharegpt", seed=2)
    one = simulate_serving(M, C, req, SimConfig(replicas=1, max_batch=32))
    four = simulate_serving(M, C, req, SimConfig(replicas=4, max_batch=32, router="least_loaded"))
    rr = simulate_serving(M, C, req, SimConfig(replicas=4, max_batch=32, router="round_robin"))
    assert four.e2e_s.p90 < one.e2e_s.p90
    assert set(four.timeseries["replica"]) == {0.0, 1.0, 2.0, 3.0}
    assert rr.counts["completed"] == 1200


def test_step_times_come_from_the_estimator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Doubling the estimator's step time doubles the simulated makespan at maximum load."""
    req = make_requests("poisson", math.inf, n=200, input_dist="fixed:256", output_dist="fixed:64", seed=0)
    base = simulate_serving(M, C, req, SimConfig(max_batch=32))
    init = StepCost.__init__

    def doubled(self, *a, **k):  # type: ignore[no-untyped-def]
        init(self, *a, **k)
        self._tok = [2.0 * x for x in self._tok]
        self._seq = [2.0 * x for x in self._seq]
        self.dec_attn_fixed *= 2.0
        self.dec_attn_per_token *= 2.0
        pa = self.prefill_attention
        self.prefill_attention = lambda q, kv: 2.0 * pa(q, kv)

    monkeypatch.setattr(StepCost, "__init__", doubled)
    slow = simulate_serving(M, C, req, SimConfig(max_batch=32))
    assert slow.duration_s == pytest.approx(2.0 * base.duration_s, rel=1e-6)


def test_decode_runs_match_iteration_by_iteration() -> None:
    """Advancing runs of decode steps in closed form equals pricing every iteration."""
    req = make_requests("poisson", 8.0, n=400, input_dist="sharegpt", seed=4)
    fast = simulate_serving(M, C, req, SimConfig(max_batch=48))
    slow = simulate_serving(M, C, req, SimConfig(max_batch=48, trace_iterations=10**9))
    assert fast.iterations == slow.iterations
    assert fast.e2e_s.mean == pytest.approx(slow.e2e_s.mean, rel=1e-9)
    assert fast.tpot_s.p99 == pytest.approx(slow.tpot_s.p99, rel=1e-9)


def test_chrome_trace_and_timeseries() -> None:
    req = make_requests("gamma", 10.0, n=300, input_dist="sharegpt", seed=5, cv=3.0)
    res = simulate_serving(M, C, req, SimConfig(replicas=2, trace_iterations=25), slo_ttft_s=0.5, slo_tpot_s=0.05)
    ev = res.chrome_trace()["traceEvents"]
    assert 0 < len(ev) <= 50 and all(e["ph"] == "X" and e["dur"] > 0 for e in ev)
    assert {e["pid"] for e in ev} == {0, 1}
    json.dumps(res.chrome_trace())
    ts = res.timeseries
    assert len(ts["t"]) == len(ts["kv_utilization"]) == len(ts["queue"]) > 10
    assert all(0.0 <= u <= 1.0 for u in ts["kv_utilization"])
    assert 0.0 <= res.slo_attainment <= 1.0 and res.goodput_requests_per_s <= res.requests_per_s + 1e-9


def test_weights_that_do_not_fit_are_an_error() -> None:
    m = catalog.get_model("llama-3.1-70b")
    with pytest.raises(SimulationError, match="need .* GB per accelerator"):
        simulate_serving(m, catalog.get_cluster("l40s"), make_requests(n=3, rate=1.0), SimConfig())


# ------------------------------------------------------------------ workloads
def test_length_distributions() -> None:
    rng = np.random.default_rng(0)
    assert set(sample_lengths("fixed:7", 5, rng)) == {7}
    assert set(sample_lengths("12", 3, rng)) == {12}
    u = sample_lengths("uniform:10:20", 2000, rng)
    assert u.min() >= 10 and u.max() <= 20
    ln = sample_lengths("lognormal:500:300", 20000, rng)
    assert abs(ln.mean() - 500) < 25
    chat_in = sample_lengths("sharegpt", 20000, rng, role="input")
    chat_out = sample_lengths("sharegpt", 20000, rng, role="output")
    assert 200 < chat_in.mean() < 300 and 280 < chat_out.mean() < 360
    for bad in ("nope", "fixed:-3", "uniform:5:2", "normal:abc:1", ""):
        with pytest.raises(WorkloadError):
            sample_lengths(bad, 3, rng)


def test_arrival_processes() -> None:
    p = make_requests("poisson", 10.0, n=20000, seed=1)
    gaps = np.diff(p.arrival)
    assert abs(gaps.mean() - 0.1) < 0.005 and abs(gaps.std() / gaps.mean() - 1.0) < 0.05
    g = make_requests("gamma", 10.0, n=20000, seed=1, cv=3.0)
    gg = np.diff(g.arrival)
    assert abs(gg.mean() - 0.1) < 0.01 and gg.std() / gg.mean() > 2.5
    d = make_requests("poisson", 5.0, duration=100.0, seed=2)
    assert d.arrival.max() < 100.0 and 400 < len(d) < 600
    assert np.all(make_requests("poisson", math.inf, n=10).arrival == 0.0)
    with pytest.raises(WorkloadError, match="exactly one"):
        make_requests("poisson", 1.0)
    with pytest.raises(WorkloadError, match="unknown arrival process"):
        make_requests("bursty", 1.0, n=3)


def test_trace_file(tmp_path: Path) -> None:
    good = tmp_path / "t.csv"
    good.write_text("arrival_time,input_len,output_len\n0.5,100,20\n0.0,50,10\n2.0,70,5\n", encoding="utf-8")
    tr = read_trace(good)
    assert list(tr.arrival) == [0.0, 0.5, 2.0] and list(tr.input_len) == [50, 100, 70]
    res = simulate_serving(M, C, tr, SimConfig())
    assert res.counts["completed"] == 3
    az = tmp_path / "azure.csv"
    az.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n1,10,2\n3,20,4\n", encoding="utf-8")
    assert len(read_trace(az)) == 2
    scaled = make_requests(str(az), 4.0)
    assert scaled.arrival[-1] == pytest.approx(0.25)


@pytest.mark.parametrize(("body", "needle"), [
    ("arrival_time,input_len,output_len\n0,10,5\n1,abc,5\n", "line 3: input_len 'abc' is not a number"),
    ("arrival_time,input_len,output_len\n0,10,0\n", "line 2: output_len '0' must be a whole number"),
    ("arrival_time,input_len,output_len\n-1,10,4\n", "line 2: arrival_time '-1' must be a time >= 0"),
    ("arrival_time,input_len,output_len\nx,10,4\n", "arrival_time 'x' is not a time"),
    ("foo,bar\n1,2\n", "needs an input-length and an output-length column"),
    ("arrival_time,input_len,output_len\n", "no requests"),
])
def test_trace_with_bad_rows_names_the_row(tmp_path: Path, body: str, needle: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(WorkloadError, match=needle):
        read_trace(p)


def test_simulation_carries_the_engine_error_band() -> None:
    from paraplan import catalog
    from paraplan.infer import InferenceConfig, engine_error_band
    from paraplan.sim import SimConfig, make_requests, simulate_serving

    m, c = catalog.get_model("llama-3-8b"), catalog.get_cluster("h100-sxm:1")
    req = make_requests("poisson", 5.0, n=50, seed=0)
    res = simulate_serving(m, c, req, SimConfig(), InferenceConfig(engine="deepspeed"))
    assert (res.error_band_pct, res.error_band_engine) == engine_error_band("deepspeed") != (None, None)
    assert simulate_serving(m, c, req, SimConfig(), InferenceConfig(), layer="spec").error_band_pct is None
