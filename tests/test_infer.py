"""The inference estimator: components add up, memory and quantization behave, bad input is refused clearly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paraplan import catalog
from paraplan.infer import (
    TIME_COMPONENTS,
    InferenceConfig,
    ServingInputError,
    SpeculativeConfig,
    StepCost,
    decode_attention_time,
    estimate_inference,
    iteration_time,
    kv_bytes_per_token,
    max_batch_for,
    speculative_step,
    weight_bytes_per_accelerator,
)

LLAMA8 = catalog.get_model("llama-3.1-8b")
LLAMA70 = catalog.get_model("llama-3.1-70b")
H100 = catalog.get_cluster("h100-sxm:8")
A100 = catalog.get_cluster("a100-sxm-80gb:8")
NO_OVERHEAD = {"step_overhead_s": 0.0, "layer_overhead_s": 0.0, "seq_overhead_s": 0.0, "compute_derate": 1.0}


def test_components_add_up_and_result_is_consistent() -> None:
    est = estimate_inference(LLAMA8, H100, batch=16, input_len=512, output_len=128)
    assert set(est.prefill.components_s) == set(TIME_COMPONENTS)
    assert sum(est.prefill.components_s.values()) == pytest.approx(est.prefill.total_s, rel=1e-9)
    assert sum(est.decode.components_s.values()) == pytest.approx(est.decode.total_s, rel=1e-9)
    assert sum(est.memory.components_bytes.values()) == pytest.approx(est.memory.total_bytes, rel=1e-12)
    assert est.ttft_s == pytest.approx(est.prefill.total_s)
    assert est.e2e_s == pytest.approx(est.ttft_s + est.decode.total_s)
    assert est.tpot_s == pytest.approx(est.decode.total_s / 127)
    assert est.output_tokens_per_s == pytest.approx(est.replicas * 16 * 128 / est.e2e_s)
    assert est.output_tokens_per_s_per_accelerator * est.n_accelerators == pytest.approx(est.output_tokens_per_s)
    # cost: USD per hour of the used accelerators / tokens per hour
    usd_h = est.price_per_hour * est.n_accelerators
    assert est.cost_per_million_output_tokens == pytest.approx(usd_h / 3600 / est.output_tokens_per_s * 1e6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.integers(1, 64), inp=st.integers(1, 4096), out=st.integers(1, 1024),
       tp=st.sampled_from([1, 2, 4, 8]), wb=st.sampled_from([16.0, 8.0, 4.0]), kvb=st.sampled_from([16.0, 8.0, 4.0]))
def test_breakdowns_add_up_for_random_configs(batch: int, inp: int, out: int, tp: int, wb: float, kvb: float) -> None:
    cfg = InferenceConfig(tp=tp, weight_bits=wb, kv_bits=kvb, group_size=128 if wb < 8 else None)
    est = estimate_inference(LLAMA70, H100, cfg, batch=batch, input_len=inp, output_len=out, strict=False)
    assert sum(est.prefill.components_s.values()) == pytest.approx(est.ttft_s, rel=1e-9)
    assert sum(est.decode.components_s.values()) == pytest.approx(est.decode.total_s, rel=1e-9, abs=1e-15)
    assert all(v >= 0 for v in est.prefill.components_s.values())
    assert est.ttft_s > 0 and math.isfinite(est.e2e_s)


def test_decode_is_memory_bound_at_batch_one() -> None:
    """Batch-1 decode of a 16-bit 8B model on H100 reads ~16 GB of weights: a few ms, not more than 2x the
    bandwidth bound, and throughput grows with batch while TPOT grows slowly."""
    kw = {"calibration": NO_OVERHEAD}  # kernels only, whatever the fitted engine overheads
    one = estimate_inference(LLAMA8, H100, batch=1, input_len=128, output_len=128, **kw)
    bound = weight_bytes_per_accelerator(LLAMA8, InferenceConfig()) / H100.accelerator.memory_bw
    assert bound < one.tpot_s < 2.0 * bound
    big = estimate_inference(LLAMA8, H100, batch=64, input_len=128, output_len=128, **kw)
    assert big.output_tokens_per_s > 20 * one.output_tokens_per_s
    assert big.tpot_s < 2.0 * one.tpot_s


def test_quantization_changes_memory_and_speed() -> None:
    fp16 = InferenceConfig()
    int4 = InferenceConfig(weight_bits=4, group_size=128)
    assert int4.weight_bytes == pytest.approx((4 + 16 / 128) / 8)
    assert weight_bytes_per_accelerator(LLAMA8, int4) < 0.4 * weight_bytes_per_accelerator(LLAMA8, fp16)
    a = estimate_inference(LLAMA8, H100, fp16, batch=1, input_len=128, output_len=64, calibration=NO_OVERHEAD)
    b = estimate_inference(LLAMA8, H100, int4, batch=1, input_len=128, output_len=64, calibration=NO_OVERHEAD)
    assert b.tpot_s < 0.6 * a.tpot_s  # weight-only 4-bit decode streams ~4x fewer bytes
    nvfp4 = InferenceConfig(weight_bits=4, act_bits=4, group_size=16)
    assert nvfp4.weight_bytes == pytest.approx((4 + 8 / 16) / 8)  # FP8 scale per 16 weights
    kv8, kv4 = InferenceConfig(kv_bits=8), InferenceConfig(kv_bits=4, kv_group_size=64)
    assert kv_bytes_per_token(LLAMA8, kv8) == pytest.approx(kv_bytes_per_token(LLAMA8, fp16) / 2)
    assert kv4.kv_bytes == pytest.approx((4 + 32 / 64) / 8)
    mb = [float(max_batch_for(LLAMA8, H100, c, 4096)) for c in (fp16, kv8, kv4)]
    assert mb[0] < mb[1] < mb[2]


def test_tensor_parallel_splits_weights_and_kv() -> None:
    one, four = InferenceConfig(tp=1), InferenceConfig(tp=4)
    w1, w4 = weight_bytes_per_accelerator(LLAMA70, one), weight_bytes_per_accelerator(LLAMA70, four)
    assert w4 == pytest.approx(w1 / 4, rel=0.05)
    assert kv_bytes_per_token(LLAMA70, four) == pytest.approx(kv_bytes_per_token(LLAMA70, one) / 4)
    # kv heads fewer than tp: each rank keeps one head
    eight = InferenceConfig(tp=8)
    sixteen_kv = kv_bytes_per_token(LLAMA70, eight)
    assert sixteen_kv == pytest.approx(kv_bytes_per_token(LLAMA70, one) / 8)
    est = estimate_inference(LLAMA70, H100, four, batch=8, input_len=512, output_len=64)
    assert est.prefill.components_s["tp_comm"] > 0 and est.replicas == 2


def test_pipeline_parallel_has_p2p_and_microbatches() -> None:
    pp = InferenceConfig(pp=4)
    est = estimate_inference(LLAMA70, A100, pp, batch=32, input_len=256, output_len=32)
    assert est.decode.components_s["pp_comm"] > 0
    kw = {"prefill_seqs": 16, "prefill_q": 512, "prefill_kv": 512}
    base = iteration_time(LLAMA70, A100, InferenceConfig(pp=1), **kw)["total"]
    piped = iteration_time(LLAMA70, A100, pp, **kw)["total"]
    assert piped < 0.4 * base  # compute-bound: four micro-batches in flight on four stages
    dec = {"decode_seqs": 32, "decode_ctx_sum": 32 * 300.0}
    b, p = (iteration_time(LLAMA70, A100, c, **dec)["total"] for c in (InferenceConfig(), pp))
    assert 0.8 * b < p < 1.3 * b  # memory-bound decode: each micro-batch re-reads the stage's weights


@pytest.mark.parametrize("name", ["deepseek-v3", "mixtral-8x7b", "mistral-7b", "gemma-2-9b", "falcon-180b"])
def test_attention_kinds_and_moe_price(name: str) -> None:
    try:
        m = catalog.get_model(name)
    except Exception:  # pragma: no cover - catalog without this entry
        pytest.skip(f"{name} not in the catalog")
    c = catalog.get_cluster("h200-sxm:8")
    tp = 8 if m.n_heads % 8 == 0 else 1
    cfg = InferenceConfig(tp=tp, weight_bits=8, act_bits=8, kv_bits=8)
    est = estimate_inference(m, c, cfg, batch=4, input_len=1024, output_len=64, strict=False)
    assert est.ttft_s > 0 and est.tpot_s > 0
    assert sum(est.decode.components_s.values()) == pytest.approx(est.decode.total_s)


def test_mla_caches_the_latent() -> None:
    m = catalog.get_model("deepseek-v3")
    cfg = InferenceConfig(tp=8)
    per_layer = (m.mla.kv_lora_rank + m.mla.qk_rope_head_dim) * 2  # replicated latent, 16-bit
    assert kv_bytes_per_token(m, cfg) == pytest.approx(m.n_layers * per_layer)


def test_moe_decode_loads_more_experts_with_batch() -> None:
    m = catalog.get_model("mixtral-8x7b")
    c = catalog.get_cluster("h100-sxm:2")
    cfg = InferenceConfig(tp=2)
    t1 = iteration_time(m, c, cfg, decode_seqs=1, decode_ctx_sum=100.0)["gemm"]
    t8 = iteration_time(m, c, cfg, decode_seqs=8, decode_ctx_sum=800.0)["gemm"]
    assert t8 > 2.0 * t1  # 1 token touches 2 of 8 experts, 8 tokens nearly all


def test_sliding_window_caps_decode_attention() -> None:
    m = catalog.get_model("mistral-7b")
    assert m.sliding_window
    c = catalog.get_cluster("h100-sxm")
    cfg = InferenceConfig()
    short = decode_attention_time(m, c, cfg, 1, float(m.sliding_window))
    long = decode_attention_time(m, c, cfg, 1, 8.0 * m.sliding_window)
    assert float(long) == pytest.approx(float(short), rel=0.05)


def test_cpu_inference_runs() -> None:
    c = catalog.get_cluster("xeon-8480plus")
    m = catalog.get_model("llama-2-7b")
    est = estimate_inference(m, c, batch=1, input_len=128, output_len=16)
    assert est.tpot_s > 0.02  # ~13 GB at 307 GB/s
    assert any("CPU" in a for a in est.assumptions)


def test_decode_attention_is_linear_in_context_sum() -> None:
    cfg = InferenceConfig(kv_bits=8)
    x = np.array([1e3, 5e4, 2e5])
    t = decode_attention_time(LLAMA70, H100, cfg, 64, x)
    slope = (t[2] - t[1]) / (x[2] - x[1])
    assert t[1] - t[0] == pytest.approx(slope * (x[1] - x[0]), rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(n_dec=st.integers(0, 40), ctx=st.integers(1, 3000), q=st.integers(0, 400))
def test_step_cost_equals_iteration_time(n_dec: int, ctx: int, q: int) -> None:
    """The simulator's tabulated step time is the estimator's iteration time (pp = 1)."""
    cfg = InferenceConfig(tp=2, weight_bits=8, act_bits=8)
    cost = StepCost(LLAMA8, H100, cfg, max_tokens=512, max_seqs=64)
    npf = 1 if q else 0
    ref = iteration_time(LLAMA8, H100, cfg, decode_seqs=n_dec, decode_ctx_sum=float(n_dec * ctx), prefill_seqs=npf,
                         prefill_q=q, prefill_kv=q)["total"]
    pa = cost.prefill_attention(np.array([float(q)]), np.array([float(q)])) if q else 0.0
    got = cost.time(n_dec + q, n_dec + npf, n_dec, float(n_dec * ctx), pa)
    assert got == pytest.approx(float(ref), rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------ speculative decoding
def test_acceptance_rate_gives_expected_tokens() -> None:
    s = SpeculativeConfig(method="lookup", draft_len=4, acceptance_rate=0.8)
    assert s.tau == pytest.approx((1 - 0.8**5) / (1 - 0.8))
    assert SpeculativeConfig(method="lookup", draft_len=4, acceptance_rate=1.0).tau == 5


def test_speculative_speedup_behaves() -> None:
    draft = catalog.get_model("llama-3.2-1b") if "llama-3.2-1b" in [m.name for m in catalog.models()] else None
    c = catalog.get_cluster("h100-sxm")
    good = SpeculativeConfig(method="lookup", draft_len=4, mean_accepted=3.5)
    r = speculative_step(LLAMA8, c, InferenceConfig(), good, 1, 512.0, calibration=NO_OVERHEAD)
    assert 2.5 < r.speedup < 3.5  # verifying 5 tokens costs about one memory-bound step
    assert r.tpot_s == pytest.approx(r.step_s / 3.5)
    # at a large batch decode is compute-bound: verifying 5 tokens per sequence costs ~5 steps
    big = speculative_step(LLAMA8, c, InferenceConfig(), good, 256, 512.0, calibration=NO_OVERHEAD)
    assert big.speedup < r.speedup
    if draft is not None:
        d = SpeculativeConfig(method="draft_model", draft_model=draft, draft_len=4, acceptance_rate=0.7)
        rd = speculative_step(LLAMA8, c, InferenceConfig(), d, 1, 512.0)
        assert rd.draft_s > 0 and rd.speedup < d.tau
    est = estimate_inference(LLAMA8, c, batch=1, input_len=256, output_len=128, speculative=good)
    plain = estimate_inference(LLAMA8, c, batch=1, input_len=256, output_len=128)
    assert est.tpot_s == pytest.approx(plain.tpot_s / est.speculative.speedup, rel=1e-9)


def test_speculative_config_errors() -> None:
    with pytest.raises(ValueError, match="acceptance_rate or mean_accepted"):
        SpeculativeConfig(method="lookup", draft_len=4)
    with pytest.raises(ValueError, match="exceeds draft_len"):
        SpeculativeConfig(method="lookup", draft_len=2, mean_accepted=4.0)
    with pytest.raises(ValueError, match="needs draft_model"):
        SpeculativeConfig(method="draft_model", draft_len=2, mean_accepted=2.0)


# ------------------------------------------------------------------ bad input (issue section 4)
def test_lengths_beyond_context_are_refused() -> None:
    m = catalog.get_model("llama-2-7b")
    with pytest.raises(ServingInputError, match="4097|exceeds the 4096-token context"):
        estimate_inference(m, H100, input_len=4000, output_len=98)
    with pytest.raises(ServingInputError, match="output length"):
        estimate_inference(m, H100, input_len=10, output_len=0)


def test_batch_that_cannot_fit_names_the_value() -> None:
    with pytest.raises(ServingInputError, match=r"batch 100000 does not fit: .*at most \d+"):
        estimate_inference(LLAMA8, H100, batch=100000, input_len=1024, output_len=128)
    with pytest.raises(ServingInputError, match="weights of llama-3.1-70b"):
        estimate_inference(LLAMA70, catalog.get_cluster("l4"), input_len=128, output_len=8)
    est = estimate_inference(LLAMA8, H100, batch=100000, input_len=1024, output_len=128, strict=False)
    assert not est.fits and est.max_batch < 100000


@pytest.mark.parametrize(("kw", "needle"), [({"weight_bits": 0.5}, "weight_bits must be within 1-16, got 0.5"),
                                            ({"weight_bits": 17}, "got 17"), ({"kv_bits": 0}, "kv_bits"),
                                            ({"act_bits": 6}, "act_bits must be 4, 8, 16 or 32, got 6"),
                                            ({"tp": 4, "ep": 3}, "ep=3 must divide tp=4"),
                                            ({"weight_bits": 16, "act_bits": 8}, "needs weight_bits <= 8")])
def test_bit_widths_out_of_range(kw: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        InferenceConfig(**kw)


def test_parallelism_the_model_cannot_take() -> None:
    with pytest.raises(ServingInputError, match="tp=3 does not divide the 32 attention heads"):
        estimate_inference(LLAMA8, H100, InferenceConfig(tp=3))
    with pytest.raises(ServingInputError, match="is not a mixture of experts"):
        estimate_inference(LLAMA8, H100, InferenceConfig(tp=2, ep=2))
    with pytest.raises(ServingInputError, match="accelerators per replica"):
        estimate_inference(LLAMA8, catalog.get_cluster("h100-sxm:2"), InferenceConfig(tp=4))


def test_serving_estimates_carry_the_error_band_of_their_engine_kind() -> None:
    from paraplan import catalog
    from paraplan.infer import InferenceConfig, estimate_inference, inference_params

    fit = inference_params()["fit"]
    m, c = catalog.get_model("llama-3-8b"), catalog.get_cluster("h100-sxm:1")
    ds = estimate_inference(m, c, InferenceConfig(engine="deepspeed"), batch=8, input_len=512, output_len=128)
    assert ds.error_band_pct == fit["deepspeed"]["p90_ape_pct"] and ds.error_band_engine == "deepspeed"
    # a kind without fitted rows of its own reports the band of the parameters it uses (the compiled engine's)
    sg = estimate_inference(m, c, InferenceConfig(engine="sglang"), batch=8, input_len=512, output_len=128)
    assert sg.error_band_engine == "trtllm" and sg.error_band_pct == fit["trtllm"]["p90_ape_pct"]
    spec = estimate_inference(m, c, InferenceConfig(), batch=8, input_len=512, output_len=128, layer="spec")
    assert spec.error_band_pct is None and spec.error_band_engine is None
