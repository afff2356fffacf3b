"""NanoFlow: the eq. 5 bound and the nano-batch overlap model."""

from __future__ import annotations

import pytest

from paraplan.catalog import get_cluster, get_model
from paraplan.infer import InferenceConfig, estimate_inference
from paraplan.techniques import nanoflow as N

M = get_model("llama-2-70b")
C = get_cluster("dgx-a100:8")
CFG = InferenceConfig(tp=8)


def test_bound_hand_computed_with_datasheet_peak() -> None:
    acc = C.accelerator
    v = N.optimal_throughput_per_accelerator(M, acc, compute_flops=312e12)
    assert v == pytest.approx(312e12 / (2 * M.n_active_params()))
    # the achieved GEMM rate is below the datasheet peak, so the bound is tighter
    assert N.optimal_throughput_per_accelerator(M, acc) < v


def test_bound_scales_inversely_with_params() -> None:
    acc = C.accelerator
    small = N.optimal_throughput_per_accelerator(get_model("llama-2-7b"), acc)
    big = N.optimal_throughput_per_accelerator(M, acc)
    assert small / big == pytest.approx(M.n_active_params() / get_model("llama-2-7b").n_active_params())


def test_overlap_is_between_max_and_sum() -> None:
    it = N.overlap_iteration(M, C, CFG, 2048, 1024, 512, nano_overhead=0.0)
    parts = (it["compute_s"], it["memory_s"], it["network_s"])
    assert it["overlapped_s"] == pytest.approx(max(parts) + it["overhead_s"])
    assert it["sequential_s"] == pytest.approx(sum(parts) + it["overhead_s"])
    assert it["overlapped_s"] < it["sequential_s"]


def test_nano_overhead_slows_and_fraction_below_one() -> None:
    a = N.nanoflow_throughput_per_accelerator(M, C, CFG, 1024, 512, nano_overhead=0.0)
    b = N.nanoflow_throughput_per_accelerator(M, C, CFG, 1024, 512, nano_overhead=0.3)
    assert b["overlapped_tokens_per_s_per_accelerator"] < a["overlapped_tokens_per_s_per_accelerator"]
    assert a["overlapped_tokens_per_s_per_accelerator"] < N.optimal_throughput_per_accelerator(M, C.accelerator)


def test_memory_share_grows_with_context() -> None:
    short = N.memory_compute_ratio("llama-2-70b", 8, 8, 2048, 256, 256).value
    long = N.memory_compute_ratio("llama-2-70b", 8, 8, 2048, 2048, 2048).value
    assert long > short


def test_throughput_bound_of_a_plan() -> None:
    est = estimate_inference(M, C, CFG, batch=64, input_len=512, output_len=128)
    b = N.throughput_bound(est, M, C)
    assert 0 < b["fraction_of_bound"] < 1
    assert b["plan_tokens_per_s_per_accelerator"] == pytest.approx(est.total_tokens_per_s / est.n_accelerators)
    fp8 = estimate_inference(M, get_cluster("dgx-h100:8"), InferenceConfig(tp=8, weight_bits=8, act_bits=8),
                             batch=64, input_len=512, output_len=128)
    assert N.throughput_bound(fp8, M, get_cluster("dgx-h100:8"))["gemm_dtype"] == "fp8"
