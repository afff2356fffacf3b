"""NanoFlow: intra-device parallelism for serving throughput (Zhu et al., OSDI'25, arXiv 2408.12757).

*NanoFlow: Towards Optimal Large Language Model Serving Throughput.* Two ideas:

1. **The optimal-throughput bound** (paper eq. 5). At large batch every token costs ``2 P`` FLOPs of weight
   GEMMs (``P`` = active parameters) and serving is compute-bound (eqs. 1-4: ``T_mem / T_comp`` and
   ``T_net / T_comp`` fall below 1 for GQA models at a dense batch of thousands of tokens), so no engine can
   exceed ``Compute / (2 P)`` tokens/s per accelerator, ``Compute`` being the *achieved* dense GEMM rate
   (NanoFlow measured it with CUTLASS; paraplan takes it from its fitted GEMM curve, ``gemm_time`` of a large
   square GEMM). With the datasheet peak instead the bound is looser (about 2.2k tokens/s/GPU for
   LLaMA-2-70B on A100). Tokens count input plus output (NanoFlow's definition).
2. **Nano-batch overlap.** A baseline engine runs an iteration's GEMMs (compute-bound), decode attention
   (memory-bound) and TP collectives (network-bound) one after the other: ``T = T_comp + T_mem + T_net``.
   NanoFlow splits the dense batch into nano-batches and runs operations of different nano-batches
   concurrently on partitioned SMs, so the iteration approaches ``max(T_comp, T_mem, T_net)``; splitting
   makes each kernel less efficient (the paper measured 13.2 % for nano-batching without overlap, Fig. 9).

:func:`overlap_iteration` prices one steady-state iteration with paraplan's :func:`paraplan.infer.iteration_time`
(components ``gemm``, ``attention``, ``elementwise``, ``tp_comm``, ``overhead``) and returns both schedules.
:func:`throughput_bound` is what ``paraplan serve`` shows as "NanoFlow bound".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..cost.efficiency import Layer, gemm_time
from ..infer import InferenceConfig, InferenceEstimate, compute_dtype, iteration_time, max_batch_for
from ..specs import AcceleratorSpec, ClusterSpec, ModelSpec

#: side of the square GEMM whose achieved rate stands for the "measured peak GEMM throughput" (CUTLASS)
BIG_GEMM = 8192.0
#: nano-batching overhead without overlap, LLaMA-2-70B, paper Fig. 9 (a measured input of the paper)
NANO_BATCH_OVERHEAD = 0.132


def achieved_gemm_flops(acc: AcceleratorSpec, dtype: str = "bf16", *, layer: Layer = "curves",
                        size: float = BIG_GEMM) -> float:
    """Achieved FLOP/s of a large dense ``size^3`` GEMM on one accelerator (paraplan's fitted curve)."""
    t = float(gemm_time(acc, dtype, size, size, size, layer=layer))
    return 2.0 * size**3 / t


def optimal_throughput_per_accelerator(model: ModelSpec, acc: AcceleratorSpec, dtype: str = "bf16", *,
                                       compute_flops: float | None = None, layer: Layer = "curves") -> float:
    """NanoFlow eq. 5: ``Compute / (2 P_active)`` tokens/s per accelerator (input + output tokens).

    ``compute_flops``: the GEMM rate to use (default: paraplan's achieved rate of a large GEMM in ``dtype``;
    pass ``acc.peak(dtype)`` for the datasheet bound)."""
    c = achieved_gemm_flops(acc, dtype, layer=layer) if compute_flops is None else float(compute_flops)
    return c / (2.0 * model.n_active_params())


def throughput_bound(est: InferenceEstimate, model: ModelSpec, cluster: ClusterSpec, *,
                     layer: Layer = "curves") -> dict[str, Any]:
    """The NanoFlow bound of a priced plan and the fraction of it the plan reaches.

    The plan's rate is its input + output tokens/s per accelerator (``total_tokens_per_s / n_accelerators``),
    the bound ``achieved GEMM FLOP/s / (2 P_active)`` in the plan's GEMM dtype."""
    acc = cluster.accelerator
    dt = compute_dtype(acc, est.config.act_bits)
    bound = optimal_throughput_per_accelerator(model, acc, dt, layer=layer)
    peak_bound = acc.peak(dt) / (2.0 * model.n_active_params())
    reached = est.total_tokens_per_s / max(est.n_accelerators, 1)
    return {
        "tokens_per_s_per_accelerator_bound": bound,
        "tokens_per_s_per_accelerator_datasheet_bound": peak_bound,
        "plan_tokens_per_s_per_accelerator": reached,
        "fraction_of_bound": reached / bound if bound > 0 else None,
        "gemm_dtype": dt,
        "definition": "NanoFlow eq. 5: achieved dense GEMM FLOP/s / (2 x active parameters); tokens = input + "
                      "output",
    }


# ----------------------------------------------------------------------------- nano-batch overlap
def steady_state_mix(dense_tokens: float, input_len: float, output_len: float) -> tuple[float, float]:
    """Prefill and decode tokens of one steady-state iteration of ``dense_tokens`` under continuous batching:
    each request brings ``input_len`` prompt tokens and ``output_len`` decode tokens, so they split in that
    ratio. Returns ``(prefill_tokens, decode_sequences)``."""
    share = input_len / (input_len + output_len)
    return dense_tokens * share, dense_tokens * (1.0 - share)


def overlap_iteration(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, dense_tokens: float,
                      input_len: float, output_len: float, *, nano_overhead: float = NANO_BATCH_OVERHEAD,
                      layer: Layer = "curves") -> dict[str, float]:
    """One steady-state iteration of ``dense_tokens`` tokens, sequential and nano-batch overlapped.

    Resources: compute = weight GEMMs (and prompt attention, which is compute-bound), memory = decode
    attention plus elementwise kernels, network = TP/EP/PP collectives. Sequential = their sum plus the engine
    overhead; overlapped = ``(1 + nano_overhead) * max(...)`` plus the overhead (asynchronous scheduling hides
    the CPU, not the fixed per-iteration costs)."""
    pf_tokens, n_dec = steady_state_mix(dense_tokens, input_len, output_len)
    ctx = input_len + output_len / 2.0
    it = iteration_time(model, cluster, cfg, decode_seqs=n_dec, decode_ctx_sum=n_dec * ctx,
                        prefill_seqs=pf_tokens / input_len, prefill_q=input_len, prefill_kv=input_len,
                        layer=layer)
    c = {k: float(np.sum(v)) for k, v in it.items()}
    # split attention into the compute-bound prompt part and the memory-bound decode part
    it_dec = iteration_time(model, cluster, cfg, decode_seqs=n_dec, decode_ctx_sum=n_dec * ctx, layer=layer)
    dec_attn = float(it_dec["attention"])
    pre_attn = max(c["attention"] - dec_attn, 0.0)
    t_comp = c["gemm"] + pre_attn
    t_mem = dec_attn + c["elementwise"]
    t_net = c["tp_comm"] + c["ep_comm"] + c["pp_comm"]
    seq = t_comp + t_mem + t_net + c["overhead"]
    ovl = (1.0 + nano_overhead) * max(t_comp, t_mem, t_net) + c["overhead"]
    return {"compute_s": t_comp, "memory_s": t_mem, "network_s": t_net, "overhead_s": c["overhead"],
            "sequential_s": seq, "overlapped_s": ovl, "tokens": dense_tokens, "decode_seqs": n_dec,
            "prefill_tokens": pf_tokens}


def nanoflow_throughput_per_accelerator(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig,
                                        input_len: float, output_len: float, *, dense_tokens: float = 2048.0,
                                        nano_overhead: float = NANO_BATCH_OVERHEAD,
                                        layer: Layer = "curves") -> dict[str, float]:
    """Tokens/s per accelerator (input + output) of a nano-batched engine at a dense batch of ``dense_tokens``,
    capped by the KV cache: the decode sequences in flight must fit (else the dense batch shrinks)."""
    _, n_dec = steady_state_mix(dense_tokens, input_len, output_len)
    cap = float(max_batch_for(model, cluster, cfg, input_len + output_len, max_seqs=int(n_dec) + 1))
    if n_dec > cap:  # the KV cache limits the decode sequences, hence the dense batch
        dense_tokens = dense_tokens * cap / n_dec
    it = overlap_iteration(model, cluster, cfg, dense_tokens, input_len, output_len,
                           nano_overhead=nano_overhead, layer=layer)
    n = cfg.accelerators
    it["overlapped_tokens_per_s_per_accelerator"] = dense_tokens / it["overlapped_s"] / n
    it["sequential_tokens_per_s_per_accelerator"] = dense_tokens / it["sequential_s"] / n
    it["kv_cap_sequences"] = cap
    return it


# ----------------------------------------------------------------------------- claims
def _setup(model: str, gpus: int, tp: int, cluster: str) -> tuple[ModelSpec, ClusterSpec, InferenceConfig]:
    m = get_model(model)
    c = get_cluster(f"{cluster}:{gpus}")
    return m, c, InferenceConfig(tp=tp)


def optimal_throughput(model: str, accelerator_cluster: str = "dgx-a100", datasheet: bool = False) -> ClaimValue:
    """Claim: NanoFlow's optimum for ``model`` (tokens/s per GPU), achieved-GEMM or datasheet ``Compute``."""
    m = get_model(model)
    acc = get_cluster(f"{accelerator_cluster}:8").accelerator
    comp = acc.peak("bf16") if datasheet else achieved_gemm_flops(acc)
    v = optimal_throughput_per_accelerator(m, acc, compute_flops=comp)
    return ClaimValue(v, {"compute_flops": comp, "active_params": m.n_active_params()})


def fraction_of_optimal(model: str, gpus: int, tp: int, input_len: int, output_len: int,
                        dense_tokens: float = 2048.0, cluster: str = "dgx-a100") -> ClaimValue:
    """Claim: the nano-batched engine's throughput as a fraction of the optimum (constant lengths)."""
    m, c, cfg = _setup(model, gpus, tp, cluster)
    r = nanoflow_throughput_per_accelerator(m, c, cfg, input_len, output_len, dense_tokens=dense_tokens)
    opt = optimal_throughput_per_accelerator(m, c.accelerator)
    return ClaimValue(r["overlapped_tokens_per_s_per_accelerator"] / opt, {**r, "optimum": opt})


def _baseline_row(model: str, gpus: int, tp: int, input_len: int | None, output_len: int | None,
                  dataset: str, engine: str, version: str) -> dict[str, str]:
    return {"source": "paraplan.techniques.nanoflow", "model": model, "hardware": "A100 80GB SXM",
            "n_devices": str(gpus), "engine": engine, "engine_version": version, "weight_prec": "fp16",
            "act_prec": "fp16", "kv_prec": "fp16", "tp": str(tp), "pp": "1", "batching": "continuous/offline max load",
            "input_len": "" if input_len is None else str(input_len),
            "output_len": "" if output_len is None else str(output_len), "dataset": dataset,
            "metric": "throughput_per_gpu", "value": "1"}


def baseline_throughput(model: str, gpus: int, tp: int, input_len: int | None, output_len: int | None,
                        dataset: str = "constant length", engine: str = "TensorRT-LLM",
                        version: str = "v0.8.0") -> float:
    """Maximum-load tokens/s per GPU of a baseline engine, from paraplan's serving simulator with that engine's
    documented limits (the same path as ``paraplan validate infer`` uses for NanoFlow's baseline rows)."""
    from ..validate.infer import predict_row

    res = predict_row(_baseline_row(model, gpus, tp, input_len, output_len, dataset, engine, version))
    if res.predicted is None:
        raise ValueError(f"baseline not predicted: {res.skipped}")
    return float(res.predicted)


#: the traces' mean lengths (paraplan.sim.workload.PRESETS) set the nano-batched engine's steady-state mix
TRACE_MEANS = {"Splitwise trace": "splitwise", "LMSYS-Chat trace": "lmsys", "ShareGPT trace": "sharegpt"}


def speedup_vs_baseline(model: str, gpus: int, tp: int, datasets: list[str], input_len: int | None = None,
                        output_len: int | None = None, dense_tokens: float = 2048.0,
                        cluster: str = "dgx-a100") -> ClaimValue:
    """Claim: mean over ``datasets`` of nano-batched engine throughput / simulated TensorRT-LLM v0.8 throughput."""
    from ..sim.workload import PRESETS

    m, c, cfg = _setup(model, gpus, tp, cluster)
    ratios, det = [], {}
    for ds in datasets:
        if ds in TRACE_MEANS:
            i_len, _, o_len, _, _ = PRESETS[TRACE_MEANS[ds]]
            base = baseline_throughput(model, gpus, tp, None, None, ds)
        else:
            assert input_len is not None and output_len is not None
            i_len, o_len = float(input_len), float(output_len)
            base = baseline_throughput(model, gpus, tp, input_len, output_len, ds)
        nano = nanoflow_throughput_per_accelerator(m, c, cfg, i_len, o_len, dense_tokens=dense_tokens)
        r = nano["overlapped_tokens_per_s_per_accelerator"] / base
        ratios.append(r)
        det[ds] = {"nanoflow": nano["overlapped_tokens_per_s_per_accelerator"], "baseline": base, "ratio": r,
                   "input_len": i_len, "output_len": o_len}
    return ClaimValue(float(np.mean(ratios)), det)


def overlap_gain(model: str, gpus: int, tp: int, input_len: int, output_len: int, dense_tokens: float = 2048.0,
                 cluster: str = "dgx-a100") -> ClaimValue:
    """Claim: sequential / overlapped iteration time of the same nano-batched dense batch (overlap's own gain)."""
    m, c, cfg = _setup(model, gpus, tp, cluster)
    it = overlap_iteration(m, c, cfg, dense_tokens, input_len, output_len)
    seq_nano = (1.0 + NANO_BATCH_OVERHEAD) * (it["compute_s"] + it["memory_s"] + it["network_s"]) + it["overhead_s"]
    return ClaimValue(seq_nano / it["overlapped_s"], it)


def memory_compute_ratio(model: str, gpus: int, tp: int, dense_tokens: float, input_len: int,
                         output_len: int, cluster: str = "dgx-a100") -> ClaimValue:
    """NanoFlow eq. 4 from paraplan's priced components: memory-bound time / compute-bound time of an iteration."""
    m, c, cfg = _setup(model, gpus, tp, cluster)
    it = overlap_iteration(m, c, cfg, dense_tokens, input_len, output_len)
    return ClaimValue(it["memory_s"] / it["compute_s"] if it["compute_s"] > 0 else math.inf, it)
