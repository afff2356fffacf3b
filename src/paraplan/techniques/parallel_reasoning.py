"""Parallel reasoning and parallel tool calls: the latency and memory side.

Every per-step cost comes from :func:`paraplan.infer.iteration_time` (the function :func:`estimate_inference` sums
over a decode): a decode step of ``B`` sequences whose contexts add up to ``C`` tokens. What the papers change is
which sequences decode together and what they attend to. Accuracy is never modelled; path counts, lengths and
tool latencies are inputs.

* **ParaThinker** -- Wen et al., "ParaThinker: Native Parallel Thinking as a New Paradigm to Scale LLM Test-time
  Compute", arXiv 2509.04475. ``P`` reasoning paths of ``L`` tokens decode as one batch over a shared prompt: the
  weights are read once per step, so the latency overhead over one path is the KV-read and per-sequence growth:
  ``T(P) / T(1) - 1`` (:func:`paths_latency`).
* **Hogwild! Inference** -- Rodionov et al., "Hogwild! Inference: Parallel LLM Generation via Concurrent
  Attention", arXiv 2504.06261. ``N`` workers share one KV cache: every worker attends to the prompt and *all*
  workers' tokens, so a step of ``N`` workers after ``j`` tokens each reads ``N (prompt + N j)`` cached tokens,
  and the cache holds ``prompt + N j`` tokens once (:func:`hogwild_run`).
* **APR** -- Pan et al., "Learning Adaptive Parallel Reasoning with Language Models", arXiv 2504.15466, and
  **ThreadWeaver** (adaptive parallel reasoning on Qwen3-8B): a parent spawns child threads that decode as a batch
  and joins them; wall time = sequential segments at batch 1 + for each fork the steps of the active children
  (:func:`forkjoin_latency`), against the same tokens decoded in one sequence.
* **LLMCompiler** -- Kim et al., "An LLM Compiler for Parallel Function Calling", ICML'24, arXiv 2312.04511.
  A planner emits a DAG of tool calls; independent calls run in parallel:
  ``T = T_plan + sum over DAG levels of max tool latency + T_join`` against ReAct's
  ``sum_i (T_llm_i + T_tool_i)`` with a context that grows each step (:func:`llmcompiler_latency`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..infer import InferenceConfig, estimate_inference, iteration_time, kv_bytes_per_token
from ..specs import ClusterSpec, ModelSpec

__all__ = ["decode_steps_time", "paths_latency", "hogwild_run", "forkjoin_latency", "llm_call_time",
           "react_latency", "llmcompiler_latency", "parathinker_overhead", "hogwild_speedup",
           "forkjoin_speedup", "llmcompiler_speedup", "paths_kv_bytes"]


def decode_steps_time(model: ModelSpec, cluster: ClusterSpec, batch: np.ndarray | float,
                      ctx_sum: np.ndarray | float, cfg: InferenceConfig | None = None) -> float:
    """Seconds of the decode steps given per step (arrays): ``batch`` sequences whose contexts add up to
    ``ctx_sum``; steps with no sequence cost nothing."""
    cfg = cfg or InferenceConfig()
    b = np.asarray(batch, dtype=float)
    c = np.asarray(ctx_sum, dtype=float)
    t = iteration_time(model, cluster, cfg, decode_seqs=b, decode_ctx_sum=c)["total"]
    return float(np.sum(np.where(b > 0, t, 0.0)))


def paths_latency(model: ModelSpec, cluster: ClusterSpec, paths: int, prompt: int, length: int,
                  cfg: InferenceConfig | None = None) -> float:
    """Wall seconds for ``paths`` paths of ``length`` tokens over a shared ``prompt`` (static batch,
    :func:`paraplan.infer.estimate_inference`: one prefill, then ``length - 1`` steps)."""
    est = estimate_inference(model, cluster, cfg or InferenceConfig(), batch=paths, input_len=prompt,
                             output_len=length, strict=False)
    return est.e2e_s


def paths_kv_bytes(model: ModelSpec, paths: int, prompt: int, length: int, shared_prefix: bool = True,
                   cfg: InferenceConfig | None = None) -> float:
    """KV-cache bytes of ``paths`` paths at their end, the prompt stored once when ``shared_prefix``."""
    per = kv_bytes_per_token(model, cfg or InferenceConfig())
    tokens = (prompt if shared_prefix else paths * prompt) + paths * length
    return tokens * per


def hogwild_run(model: ModelSpec, cluster: ClusterSpec, workers: int, prompt: int, tokens_per_worker: int,
                shared: bool = True, cfg: InferenceConfig | None = None) -> dict[str, float]:
    """Decode seconds and final KV tokens of ``workers`` workers writing ``tokens_per_worker`` each. ``shared``:
    one cache that every worker attends in full (Hogwild!); otherwise independent caches over a shared prompt."""
    j = np.arange(tokens_per_worker, dtype=float)
    n = float(workers)
    ctx_each = prompt + (n * j if shared else j) + 1.0
    t = decode_steps_time(model, cluster, np.full_like(j, n), n * ctx_each, cfg)
    kv_tokens = prompt + n * tokens_per_worker
    return {"decode_s": t, "kv_tokens": float(kv_tokens)}


def forkjoin_latency(model: ModelSpec, cluster: ClusterSpec, prompt: int, stages: Sequence[Any],
                     join_appends: bool = True, cfg: InferenceConfig | None = None) -> dict[str, float]:
    """Wall seconds of a fork/join trajectory against the same tokens in one sequence.

    ``stages``: a sequence of ints (tokens the parent decodes alone) and lists of ints (one fork: each child's
    tokens; children decode as a batch, a finished child leaves it). Children attend to the parent context at the
    fork plus their own tokens; at the join the children's tokens are appended to the parent's context when
    ``join_appends`` (ThreadWeaver), otherwise only the parent continues (APR's summaries are left to the
    next sequential stage)."""
    ctx = float(prompt)
    par_t = 0.0
    total_tokens = 0
    critical = 0
    for st in stages:
        if isinstance(st, (int, np.integer)):
            j = np.arange(int(st), dtype=float)
            par_t += decode_steps_time(model, cluster, np.ones_like(j), ctx + j + 1.0, cfg)
            ctx += int(st)
            total_tokens += int(st)
            critical += int(st)
            continue
        lens = np.asarray(list(st), dtype=float)
        steps = int(lens.max())
        j = np.arange(steps, dtype=float)[:, None]
        active = j < lens[None, :]
        batch = active.sum(axis=1).astype(float)
        ctx_sum = np.where(active, ctx + j + 1.0, 0.0).sum(axis=1)
        par_t += decode_steps_time(model, cluster, batch, ctx_sum, cfg)
        total_tokens += int(lens.sum())
        critical += steps
        if join_appends:
            ctx += float(lens.sum())
    j = np.arange(total_tokens, dtype=float)
    seq_t = decode_steps_time(model, cluster, np.ones_like(j), prompt + j + 1.0, cfg)
    return {"parallel_s": par_t, "sequential_s": seq_t, "total_tokens": float(total_tokens),
            "critical_path_tokens": float(critical)}


def llm_call_time(model: ModelSpec, cluster: ClusterSpec, input_len: int, output_len: int,
                  cfg: InferenceConfig | None = None) -> float:
    """One LLM call at batch 1 (prefill + decode), :func:`paraplan.infer.estimate_inference`."""
    return estimate_inference(model, cluster, cfg or InferenceConfig(), batch=1, input_len=input_len,
                              output_len=max(output_len, 1), strict=False).e2e_s


def react_latency(model: ModelSpec, cluster: ClusterSpec, tool_latencies: Sequence[float], prompt: int,
                  tokens_per_step: int, observation_tokens: int, answer_tokens: int,
                  cfg: InferenceConfig | None = None) -> float:
    """ReAct: one LLM call (thought + action) per tool call, sequential, the context growing by the step's
    tokens and the observation; then the final answer."""
    t, ctx = 0.0, prompt
    for lat in tool_latencies:
        t += llm_call_time(model, cluster, ctx, tokens_per_step, cfg) + float(lat)
        ctx += tokens_per_step + observation_tokens
    return t + llm_call_time(model, cluster, ctx, answer_tokens, cfg)


def llmcompiler_latency(model: ModelSpec, cluster: ClusterSpec, levels: Sequence[Sequence[float]], prompt: int,
                        tokens_per_task: int, observation_tokens: int, answer_tokens: int,
                        cfg: InferenceConfig | None = None) -> float:
    """LLMCompiler: one planner call emitting every task, the DAG executed level by level (each level as long as
    its slowest tool), one joiner call over all observations."""
    n_tasks = sum(len(lv) for lv in levels)
    plan = llm_call_time(model, cluster, prompt, n_tasks * tokens_per_task, cfg)
    execute = sum(max(lv) for lv in levels if len(lv))
    join = llm_call_time(model, cluster, prompt + n_tasks * (tokens_per_task + observation_tokens), answer_tokens,
                         cfg)
    return plan + execute + join


# ----------------------------------------------------------------------- claim functions
def parathinker_overhead(model: str, accelerator: str, paths: int, prompt: int, length: int,
                         engine: str = "default") -> ClaimValue:
    """Latency of ``paths`` parallel paths over one path of the same length, minus 1."""
    m = get_model(model)
    c = get_cluster(f"{accelerator}:1")
    cfg = InferenceConfig(engine=engine)
    t1 = paths_latency(m, c, 1, prompt, length, cfg)
    tp = paths_latency(m, c, paths, prompt, length, cfg)
    return ClaimValue(tp / t1 - 1.0, {"t_one_path_s": t1, "t_parallel_s": tp,
                                      "kv_gb_parallel": paths_kv_bytes(m, paths, prompt, length) / 1e9})


def hogwild_speedup(model: str, accelerator: str, workers: int, prompt: int, total_tokens: int,
                    n_accelerators: int = 1) -> ClaimValue:
    """Wall-time speedup of ``workers`` Hogwild! workers writing ``total_tokens`` together, over one worker."""
    m = get_model(model)
    c = get_cluster(f"{accelerator}:{n_accelerators}")
    cfg = InferenceConfig(tp=n_accelerators)
    one = hogwild_run(m, c, 1, prompt, total_tokens, cfg=cfg)
    many = hogwild_run(m, c, workers, prompt, total_tokens // workers, cfg=cfg)
    return ClaimValue(one["decode_s"] / many["decode_s"], {"one_worker_s": one["decode_s"],
                                                          "hogwild_s": many["decode_s"]})


def forkjoin_speedup(model: str, accelerator: str, prompt: int, stages: list[Any], join_appends: bool = True,
                     ) -> ClaimValue:
    """Sequential decode time of the trajectory's tokens over its fork/join wall time."""
    m = get_model(model)
    c = get_cluster(f"{accelerator}:1")
    r = forkjoin_latency(m, c, prompt, stages, join_appends)
    return ClaimValue(r["sequential_s"] / r["parallel_s"], {**r, "token_ratio": r["total_tokens"]
                                                            / r["critical_path_tokens"]})


def llmcompiler_speedup(model: str, accelerator: str, n_accelerators: int, tool_latencies: list[float],
                        levels: list[list[float]], prompt: int, react_tokens_per_step: int, tokens_per_task: int,
                        observation_tokens: int, answer_tokens: int) -> ClaimValue:
    """ReAct latency over LLMCompiler latency for the same tool calls."""
    m = get_model(model)
    c = get_cluster(f"{accelerator}:{n_accelerators}")
    cfg = InferenceConfig(tp=n_accelerators)
    r = react_latency(m, c, tool_latencies, prompt, react_tokens_per_step, observation_tokens, answer_tokens, cfg)
    lc = llmcompiler_latency(m, c, levels, prompt, tokens_per_task, observation_tokens, answer_tokens, cfg)
    return ClaimValue(r / lc, {"react_s": r, "llmcompiler_s": lc})
