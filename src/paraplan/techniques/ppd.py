"""Parallel Prompt Decoding (PPD): trained prompt tokens guess future tokens; a hardware-aware tree size.

Chen, Luk, Yiu, Li, Mishchenko, Venieris, Fan, *Hardware-Aware Parallel Prompt Decoding for Memory-Efficient
Acceleration of LLM Inference*, arXiv 2405.18628 (EMNLP 2025). ``k`` trainable prompt-token embeddings are
appended to the input; the target predicts the next ``k`` tokens in the same forward pass (no draft model),
and a sparse candidate tree is verified in the following pass. Costs:

* **trainable parameters / memory**: ``k x hidden`` embedding values (``x ensemble`` with ensemble prompt
  tokens), relative to the model's parameters (or its weight bytes);
* **step time**: one target pass over ``n_tree`` candidate tokens per sequence, priced by paraplan's
  verification iteration (:func:`paraplan.infer.speculative_step` with a ``lookup`` draft: nothing runs
  outside the target); decode is memory-bound until ``n_tree`` approaches the accelerator's ridge point
  (peak FLOP/s over the weight-streaming rate), so the best tree is larger on GPUs with more FLOP/s per
  byte. :func:`best_tree_size` picks it from an acceptance curve ``tau(n_tree)`` (a measured input);
* **speedup** = ``tau(n_tree) x t_plain / t_step(n_tree)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..cost.efficiency import Layer
from ..infer import InferenceConfig, SpeculativeConfig, speculative_step, weight_bytes_per_accelerator
from ..specs import ClusterSpec, ModelSpec


def trainable_fraction(model: ModelSpec, prompt_tokens: int, ensemble: int = 1) -> float:
    """Trainable parameters of PPD over the model's parameters: ``k x ensemble x hidden / P``."""
    return prompt_tokens * ensemble * model.hidden / model.n_params()


def memory_overhead_fraction(model: ModelSpec, prompt_tokens: int, ensemble: int = 1,
                             bytes_per_value: float = 2.0, cfg: InferenceConfig | None = None) -> float:
    """Runtime memory of the prompt embeddings over the weight bytes (one accelerator, ``cfg``'s precision)."""
    c = cfg or InferenceConfig()
    return prompt_tokens * ensemble * model.hidden * bytes_per_value / weight_bytes_per_accelerator(model, c)


def step_speedup(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, tree_size: int, tau: float, *,
                 batch: int = 1, ctx: float = 512.0, layer: Layer = "curves") -> float:
    """Speedup of one PPD configuration: ``tau`` accepted tokens per pass over ``tree_size`` candidates."""
    spec = SpeculativeConfig(method="lookup", draft_len=max(math.ceil(tau) - 1, 1), mean_accepted=tau,
                             tree_size=tree_size)
    return speculative_step(model, cluster, cfg, spec, batch, ctx, layer=layer).speedup


def verify_cost_ratio(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, tree_size: int, *,
                      batch: int = 1, ctx: float = 512.0, layer: Layer = "curves") -> float:
    """Step time with ``tree_size`` candidate tokens over a plain decode step (flat while memory-bound)."""
    spec = SpeculativeConfig(method="lookup", draft_len=1, mean_accepted=1.0,
                             tree_size=tree_size)
    e = speculative_step(model, cluster, cfg, spec, batch, ctx, layer=layer)
    return e.verify_s / e.plain_step_s


def best_tree_size(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, tau_of_tree: Callable[[int], float],
                   sizes: Sequence[int], *, batch: int = 1, ctx: float = 512.0,
                   layer: Layer = "curves") -> tuple[int, float]:
    """The hardware-aware tree size: the candidate count with the highest priced speedup for an acceptance
    curve ``tau_of_tree`` (measured). Returns ``(size, speedup)``."""
    best = max(sizes, key=lambda n: step_speedup(model, cluster, cfg, n, tau_of_tree(n), batch=batch, ctx=ctx,
                                                 layer=layer))
    return best, step_speedup(model, cluster, cfg, best, tau_of_tree(best), batch=batch, ctx=ctx, layer=layer)


# ----------------------------------------------------------------------------- claims
def claim_trainable_fraction(model: str, prompt_tokens: int, ensemble: int = 1) -> ClaimValue:
    m = get_model(model)
    return ClaimValue(trainable_fraction(m, prompt_tokens, ensemble), {"params": m.n_params()})


def claim_memory_overhead(model: str, prompt_tokens: int, ensemble: int = 1, bytes_per_value: float = 2.0) -> float:
    return memory_overhead_fraction(get_model(model), prompt_tokens, ensemble, bytes_per_value)


def claim_speedup(model: str, accelerator: str, tree_size: int, tau: float, ctx: float = 512.0) -> ClaimValue:
    m = get_model(model)
    c = get_cluster(f"{accelerator}:1")
    cfg = InferenceConfig(engine="hf")
    s = step_speedup(m, c, cfg, tree_size, tau, ctx=ctx)
    return ClaimValue(s, {"verify_over_plain": verify_cost_ratio(m, c, cfg, tree_size, ctx=ctx)})
