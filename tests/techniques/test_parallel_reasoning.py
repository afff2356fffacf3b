import pytest

from paraplan.catalog import get_cluster, get_model
from paraplan.infer import estimate_inference
from paraplan.techniques import parallel_reasoning as pr

M = get_model("qwen3-0.6b")
C = get_cluster("h100-sxm:1")


def test_decode_steps_match_estimator():
    est = estimate_inference(M, C, batch=2, input_len=100, output_len=51)
    import numpy as np

    j = np.arange(1, 51, dtype=float)
    t = pr.decode_steps_time(M, C, np.full_like(j, 2.0), 2 * (100 + j))
    assert t == pytest.approx(est.decode.total_s, rel=1e-9)


def test_paths_overhead_grows_with_length_and_paths():
    o_short = pr.parathinker_overhead("qwen3-0.6b", "h100-sxm", 8, 128, 1024).value
    o_long = pr.parathinker_overhead("qwen3-0.6b", "h100-sxm", 8, 128, 8192).value
    o_two = pr.parathinker_overhead("qwen3-0.6b", "h100-sxm", 2, 128, 8192).value
    assert 0 <= o_short < o_long
    assert o_two < o_long


def test_shared_prefix_saves_memory():
    assert pr.paths_kv_bytes(M, 8, 1000, 100) < pr.paths_kv_bytes(M, 8, 1000, 100, shared_prefix=False)


def test_hogwild_shared_cache_costs_more_than_independent():
    sh = pr.hogwild_run(M, C, 4, 256, 512, shared=True)
    ind = pr.hogwild_run(M, C, 4, 256, 512, shared=False)
    assert sh["decode_s"] >= ind["decode_s"]
    assert sh["kv_tokens"] == 256 + 4 * 512


def test_forkjoin_no_fork_is_sequential_and_fork_is_faster():
    r = pr.forkjoin_latency(M, C, 100, [500])
    assert r["parallel_s"] == pytest.approx(r["sequential_s"])
    f = pr.forkjoin_latency(M, C, 100, [100, [400, 400, 200], 100])
    assert f["total_tokens"] == 1200 and f["critical_path_tokens"] == 600
    assert f["sequential_s"] / f["parallel_s"] <= f["total_tokens"] / f["critical_path_tokens"] + 1e-9
    assert f["parallel_s"] < f["sequential_s"]


def test_llmcompiler_gain_grows_with_tool_latency():
    args = dict(model="qwen3-0.6b", accelerator="h100-sxm", n_accelerators=1, prompt=500, react_tokens_per_step=50,
                tokens_per_task=20, observation_tokens=50, answer_tokens=30)
    lo = pr.llmcompiler_speedup(tool_latencies=[0.1] * 4, levels=[[0.1] * 4], **args).value
    hi = pr.llmcompiler_speedup(tool_latencies=[2.0] * 4, levels=[[2.0] * 4], **args).value
    assert 1.0 < lo < hi <= 4.0 + 1e-9
