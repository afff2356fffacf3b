"""FlexLLM: token-level co-serving of LLM inference and PEFT fine-tuning on the same GPUs (Oliaro et al., NSDI'26,
arXiv 2402.18789, "FlexLLM: Token-Level Co-Serving of LLM Inference and Finetuning with SLO Guarantees").

Mechanism (analytic steady state on :func:`paraplan.infer.iteration_time`): each co-serving iteration has a latency
budget equal to the per-token (TPOT) SLO. Inference goes first: at request rate ``lam`` with mean prompt ``I`` and
output ``O`` tokens, Little's law gives ``B = lam O t`` decoding sequences and ``lam I t`` prompt tokens per
iteration of length ``t``. The rest of the budget is filled with fine-tuning tokens; a LoRA fine-tuning token costs
its forward pass plus the input-gradient (dX) backward, i.e. ``k_ft = 2`` token-passes through the base GEMMs
(no base weight gradients, :mod:`paraplan.finetune`). Decode is memory-bound (every iteration re-reads the
weights), so fine-tuning tokens ride on weight reads inference pays for anyway: that is why co-serving keeps most of
the fine-tuning throughput.

    fraction of peak fine-tuning = n_ft(lam) / n_ft(0),   n_ft = max tokens with iteration_time(...) <= SLO

Not modelled: FlexLLM's graph pruning and dependent parallelization (its memory savings), the KV-cache and
activation memory contention, token-level backward scheduling across iterations, and prefill/decode burstiness.
"""

from __future__ import annotations

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..errors import ConfigError
from ..infer import InferenceConfig, iteration_time

#: fine-tuning token cost in base-GEMM token passes: forward + dX backward (LoRA, frozen base)
K_FT = 2.0


def _iter_s(model, cluster, cfg, decode_seqs: float, ctx: float, prefill_tokens: float) -> float:
    r = iteration_time(model, cluster, cfg, decode_seqs=decode_seqs, decode_ctx_sum=decode_seqs * ctx,
                       prefill_seqs=1.0 if prefill_tokens > 0 else 0.0, prefill_q=prefill_tokens,
                       prefill_kv=prefill_tokens, sampled=decode_seqs)
    return float(r["total"])


def finetune_tokens_per_iteration(model: str, cluster: str, rate: float, slo_tpot_s: float, *, mean_input: float,
                                  mean_output: float, tp: int = 1, k_ft: float = K_FT) -> dict[str, float]:
    """Largest number of fine-tuning tokens one iteration can add while the iteration stays within the SLO."""
    m = get_model(model)
    c = get_cluster(cluster)
    cfg = InferenceConfig(tp=tp)
    t = slo_tpot_s
    b = rate * mean_output * t
    pf = rate * mean_input * t
    ctx = mean_input + mean_output / 2.0
    base = _iter_s(m, c, cfg, b, ctx, pf)
    if base > t:
        return {"decode_seqs": b, "prefill_tokens": pf, "inference_iter_s": base, "ft_tokens": 0.0}
    lo, hi = 0.0, 1.0
    while _iter_s(m, c, cfg, b, ctx, pf + k_ft * hi) <= t:
        hi *= 2.0
        if hi > 1e8:
            raise ConfigError("fine-tuning token budget does not converge")
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if _iter_s(m, c, cfg, b, ctx, pf + k_ft * mid) <= t:
            lo = mid
        else:
            hi = mid
    return {"decode_seqs": b, "prefill_tokens": pf, "inference_iter_s": base, "ft_tokens": lo}


def finetune_fraction_under_load(model: str, cluster: str, rate: float, slo_tpot_s: float, *,
                                 mean_input: float, mean_output: float, tp: int = 1) -> ClaimValue:
    """Fine-tuning throughput while serving ``rate`` req/s, as a fraction of fine-tuning alone (same iteration)."""
    load = finetune_tokens_per_iteration(model, cluster, rate, slo_tpot_s, mean_input=mean_input,
                                         mean_output=mean_output, tp=tp)
    alone = finetune_tokens_per_iteration(model, cluster, 0.0, slo_tpot_s, mean_input=mean_input,
                                          mean_output=mean_output, tp=tp)
    frac = load["ft_tokens"] / alone["ft_tokens"] if alone["ft_tokens"] > 0 else 0.0
    return ClaimValue(frac, {"under_load": load, "alone": alone,
                             "ft_tokens_per_s": load["ft_tokens"] / slo_tpot_s,
                             "ft_tokens_per_s_alone": alone["ft_tokens"] / slo_tpot_s})
