"""ParScale: P parallel streams of one model against parameter scaling (Chen et al., Qwen, arXiv 2505.10475).

*Parallel Scaling Law for Language Models.* The input is replicated into ``P`` streams, each with its own
learned prefix (prefix tuning: ``prefix_tokens`` extra KV per stream and layer), the ``P`` outputs are
aggregated by a small learned MLP. The fitted law (natural log, ``N`` non-embedding parameters)::

    L = (A / (N (k ln P + 1)))^alpha + E             k = 0.39 (Stack-V2 Python), 0.33 (Pile)

so ``P`` streams act like ``N_eff = N (k ln P + 1)`` parameters. Serving cost, priced here with
:func:`paraplan.infer.estimate_inference`:

* ParScale runs ``batch x P`` sequences over the *same* weights: memory grows by the extra KV cache (P-fold,
  plus prefixes) and the aggregation weights; at batch 1 decode is memory-bound, so latency hardly grows;
* parameter scaling to the same ``N_eff`` adds weights (read every decode step) and a wider KV cache.

The memory (latency) *increase ratio* is parameter scaling's increase over ParScale's, both from the same
``P = 1`` model. At large batch ParScale's ``P``-fold compute makes it compute-bound and the advantage shrinks
(:func:`latency_increase_ratio` over batches shows the crossover). The parameter-scaled model keeps depth,
heads and head size and widens the FFN until its non-embedding parameters reach ``N_eff``.
"""

from __future__ import annotations

import math

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..cost.efficiency import Layer
from ..infer import InferenceConfig, InferenceEstimate, estimate_inference
from ..specs import ClusterSpec, ModelSpec

#: the paper's fitted constants (re-fitted from the released losses, see docs/techniques-serving.md)
K_STACK_V2 = 0.3935
K_PILE = 0.3345


def n_eff(n: float, p: int, k: float = K_STACK_V2) -> float:
    """Equivalent parameters of ``P`` streams: ``N (k ln P + 1)``."""
    return n * (k * math.log(p) + 1.0)


def scaling_law_loss(n: float, p: int, a: float, alpha: float, e: float, k: float) -> float:
    """``(A / (N (k ln P + 1)))^alpha + E`` (A in parameters, not billions)."""
    return (a / n_eff(n, p, k)) ** alpha + e


def non_embedding_params(model: ModelSpec) -> float:
    emb = model.vocab * model.hidden * (1 if model.tied_embeddings else 2)
    return float(model.n_params() - emb)


def widen_to(model: ModelSpec, target_non_embedding: float) -> ModelSpec:
    """The same model with its FFN widened so that its non-embedding parameters reach the target."""
    per_ffn_unit = model.n_layers * model.hidden * (3 if model.gated else 2)
    extra = target_non_embedding - non_embedding_params(model)
    f = max(int(round(model.ffn_hidden + extra / per_ffn_unit)), 1)
    return model.model_copy(update={"name": f"{model.name}-ffn{f}", "ffn_hidden": f, "params_published": None})


def _est(model: ModelSpec, cluster: ClusterSpec, batch: int, input_len: int, output_len: int,
         layer: Layer) -> InferenceEstimate:
    return estimate_inference(model, cluster, InferenceConfig(), batch=batch, input_len=input_len,
                              output_len=output_len, layer=layer)


def parscale_vs_params(model: ModelSpec, cluster: ClusterSpec, p: int, *, batch: int = 1, input_len: int = 64,
                       output_len: int = 64, prefix_tokens: int = 48, k: float = K_STACK_V2,
                       layer: Layer = "curves") -> dict[str, float]:
    """Memory and latency increase over the ``P = 1`` model: ParScale with ``P`` streams against the
    parameter-scaled model of the same ``N_eff``. Memory excludes the workspace/overhead constants."""
    def mem(e: InferenceEstimate) -> float:
        c = e.memory.components_bytes
        return c["weights"] + c["kv_cache"]

    base = _est(model, cluster, batch, input_len, output_len, layer)
    par = _est(model, cluster, batch * p, input_len + prefix_tokens, output_len, layer)
    agg_params = (model.hidden + 1) * model.hidden * p  # aggregation MLP, 16-bit
    big = widen_to(model, n_eff(non_embedding_params(model), p, k))
    dense = _est(big, cluster, batch, input_len, output_len, layer)
    par_mem = mem(par) + 2.0 * agg_params - mem(base)
    dense_mem = mem(dense) - mem(base)
    par_lat = par.e2e_s - base.e2e_s
    dense_lat = dense.e2e_s - base.e2e_s
    return {"base_latency_s": base.e2e_s, "parscale_latency_s": par.e2e_s, "params_latency_s": dense.e2e_s,
            "parscale_memory_increase_b": par_mem, "params_memory_increase_b": dense_mem,
            "parscale_latency_increase_s": par_lat, "params_latency_increase_s": dense_lat,
            "memory_increase_ratio": dense_mem / par_mem if par_mem > 0 else math.inf,
            "latency_increase_ratio": dense_lat / par_lat if par_lat > 0 else math.inf,
            "n_eff": n_eff(non_embedding_params(model), p, k), "params_model_ffn": float(big.ffn_hidden)}


def memory_increase_ratio(model: str, p: int, accelerator: str = "a100-sxm-80gb", batch: int = 1,
                          input_len: int = 64, output_len: int = 64) -> ClaimValue:
    """Claim: parameter scaling's memory increase over ParScale's, same N_eff."""
    r = parscale_vs_params(get_model(model), get_cluster(f"{accelerator}:1"), p, batch=batch, input_len=input_len,
                           output_len=output_len)
    return ClaimValue(r["memory_increase_ratio"], r)


def latency_increase_ratio(model: str, p: int, accelerator: str = "a100-sxm-80gb", batch: int = 1,
                           input_len: int = 64, output_len: int = 64) -> ClaimValue:
    """Claim: parameter scaling's latency increase over ParScale's, same N_eff."""
    r = parscale_vs_params(get_model(model), get_cluster(f"{accelerator}:1"), p, batch=batch, input_len=input_len,
                           output_len=output_len)
    return ClaimValue(r["latency_increase_ratio"], r)


def refit_k(ns: list[float], ps: list[int], losses: list[float]) -> ClaimValue:
    """Claim helper: fit ``(E, A, alpha, k)`` of the law to (N, P, loss) rows by least squares in log-loss."""
    import numpy as np
    from scipy.optimize import least_squares

    n_arr, p_arr, l_arr = np.asarray(ns, float), np.asarray(ps, float), np.asarray(losses, float)

    def resid(x: np.ndarray) -> np.ndarray:
        e, log_a, alpha, k = x
        pred = (np.exp(log_a) / (n_arr * (k * np.log(p_arr) + 1.0))) ** alpha + e
        return np.log(np.maximum(pred, 1e-9)) - np.log(l_arr)

    best = None
    for e0 in (0.5, 1.0):
        for k0 in (0.2, 0.5):
            r = least_squares(resid, x0=[e0, math.log(1e8), 0.2, k0], loss="huber", f_scale=1e-3,
                              bounds=([0, 0, 0.01, 0], [5, 60, 2, 5]))
            if best is None or r.cost < best.cost:
                best = r
    assert best is not None
    e, log_a, alpha, k = best.x
    return ClaimValue(float(k), {"E": float(e), "A": float(math.exp(log_a)), "alpha": float(alpha)})
