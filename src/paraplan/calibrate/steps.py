"""Real steps of the test GPT (:mod:`paraplan.testing.gpt`) and paraplan's predictions for them.

A :class:`TrainCase` is one training configuration (architecture, sequence, micro-batch, activation
checkpointing, data-parallel ranks); an :class:`InferCase` one static inference batch (prefill of ``input_len``
tokens, then ``output_len - 1`` decode steps). ``measure_*`` time them on the local device (warm-up, repeats,
median; data-parallel cases in ``ranks`` spawned processes with torch DDP); ``predict_*`` price them with the
existing estimators (:func:`~paraplan.train.estimate_training` with the ``fsdp`` framework rules, ZeRO 0 =
plain DDP; :func:`~paraplan.infer.estimate_inference` with the ``hf`` engine kind), on any cluster and layer.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..specs import ClusterSpec, ModelSpec
from ..testing.spec import HEAD_DIM, VOCAB, gpt_model_spec

#: framework rules for plain PyTorch (DDP = the fsdp rules at ZeRO stage 0: gradient all-reduce overlapped
#: with the backward pass, flash attention) and the engine kind for a plain PyTorch decode loop
FRAMEWORK = "fsdp"
ENGINE = "hf"


@dataclass(frozen=True)
class TrainCase:
    hidden: int
    layers: int
    seq: int
    micro_batch: int
    checkpoint: bool = False
    ranks: int = 1

    @property
    def kind(self) -> str:
        return "train_ddp" if self.ranks > 1 else "train"

    def label(self) -> str:
        s = f"h{self.hidden} L{self.layers} s{self.seq} mb{self.micro_batch}"
        s += " ckpt" if self.checkpoint else ""
        return s + (f" ddp{self.ranks}" if self.ranks > 1 else "")

    def model_spec(self) -> ModelSpec:
        return gpt_model_spec(self.hidden, self.layers, seq_len=self.seq)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "head_dim": HEAD_DIM, "vocab": VOCAB}


@dataclass(frozen=True)
class InferCase:
    hidden: int
    layers: int
    batch: int
    input_len: int
    output_len: int

    def label(self) -> str:
        return f"h{self.hidden} L{self.layers} b{self.batch} in{self.input_len} out{self.output_len}"

    def model_spec(self) -> ModelSpec:
        return gpt_model_spec(self.hidden, self.layers, seq_len=self.input_len + self.output_len)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "head_dim": HEAD_DIM, "vocab": VOCAB}


# ------------------------------------------------------------------ predictions (no torch)
def train_strategy(case: TrainCase, precision: str = "bf16") -> Any:
    from ..strategy import Strategy

    return Strategy(dp=case.ranks, micro_batch=case.micro_batch, global_batch=case.micro_batch * case.ranks,
                    recompute="full" if case.checkpoint else "none", precision=precision, zero=0)  # type: ignore[arg-type]


def predict_train(case: TrainCase, cluster: ClusterSpec, *, layer: str = "curves",
                  calibration: dict[str, float] | None = None, calibration_source: str | None = None,
                  precision: str = "bf16") -> Any:
    """The :class:`~paraplan.train.TrainingEstimate` of one case on ``cluster`` (rescaled to ``case.ranks``)."""
    from ..train import Workload, estimate_training

    c = cluster if cluster.n_accelerators == case.ranks else cluster.with_accelerators(case.ranks)
    return estimate_training(case.model_spec(), c, train_strategy(case, precision), Workload(seq_len=case.seq),
                             framework=FRAMEWORK, layer=layer, calibration=calibration,  # type: ignore[arg-type]
                             calibration_source=calibration_source)


def train_step_function(case: TrainCase, cluster: ClusterSpec, precision: str = "bf16") -> Any:
    """``params -> predicted step seconds`` through :func:`~paraplan.train.evaluate_training` (for fitting)."""
    from ..rules import get_framework
    from ..train import Workload, evaluate_training

    c = cluster if cluster.n_accelerators == case.ranks else cluster.with_accelerators(case.ranks)
    model, arrays, w, fw = case.model_spec(), train_strategy(case, precision).to_arrays(), \
        Workload(seq_len=case.seq), get_framework(FRAMEWORK)

    def f(params: dict[str, float]) -> float:
        return float(evaluate_training(model, c, arrays, w, fw, calibration=params)["step_time_s"][0])

    return f


def predict_infer(case: InferCase, cluster: ClusterSpec, *, layer: str = "curves",
                  calibration: dict[str, float] | None = None) -> Any:
    """The :class:`~paraplan.infer.InferenceEstimate` of one case (``ttft_s`` = prefill, ``tpot_s`` = mean decode
    step) on one accelerator of ``cluster``."""
    from ..infer import InferenceConfig, estimate_inference

    c = cluster if cluster.n_accelerators == 1 else cluster.with_accelerators(1)
    return estimate_inference(case.model_spec(), c, InferenceConfig(engine=ENGINE), batch=case.batch,
                              input_len=case.input_len, output_len=case.output_len, layer=layer,  # type: ignore[arg-type]
                              strict=False, calibration=calibration)


# ------------------------------------------------------------------ measurements (torch)
def _cleanup(device: str) -> None:
    import gc

    gc.collect()
    if device == "cuda":
        from .device import require_torch

        require_torch().cuda.empty_cache()


def measure_train(case: TrainCase, device: str, dtype: str = "bf16", *, warmup: int = 2,
                  repeats: int = 5) -> list[float]:
    """Seconds of ``repeats`` training steps of one single-process case (after ``warmup`` steps)."""
    from ..testing.gpt import GPTConfig, Trainer, build, random_batch
    from .device import time_steps, torch_dtype

    if case.ranks != 1:
        raise ValueError("measure_train runs single-process cases; use measure_train_ddp")
    _cleanup(device)  # the previous case's tensors
    cfg = GPTConfig(hidden=case.hidden, n_layers=case.layers, seq_len=case.seq, checkpoint=case.checkpoint)
    model = build(cfg, device, torch_dtype(dtype))
    trainer = Trainer(model)
    x, y = random_batch(cfg, case.micro_batch, case.seq, device)
    return time_steps(lambda: trainer.step(x, y), device, warmup=warmup, repeats=repeats)


def ddp_worker(rank: int, world: int, port: int, device: str, dtype: str, threads: int, cases: list[dict[str, Any]],
               warmup: int, repeats: int, out_path: str) -> None:
    """One rank of the data-parallel measurements: every case with torch DDP; rank 0 writes the step times
    (the slowest rank's time per step) to ``out_path``."""
    import time

    from torch.nn.parallel import DistributedDataParallel as DDP

    from ..testing.gpt import GPTConfig, Trainer, build, random_batch
    from .device import setup_process, sync, torch_dtype
    from .dist import init_group, max_over_ranks

    setup_process(device, threads, rank, pin=True)
    dist = init_group(rank, world, port, device)
    dev = "cpu" if device == "cpu" else f"cuda:{rank}"
    results: list[list[float]] = []
    try:
        for cd in cases:
            case = TrainCase(**cd)
            cfg = GPTConfig(hidden=case.hidden, n_layers=case.layers, seq_len=case.seq, checkpoint=case.checkpoint)
            model = build(cfg, dev, torch_dtype(dtype))
            ddp = DDP(model, device_ids=None if device == "cpu" else [rank])
            trainer = Trainer(model, module=ddp)
            x, y = random_batch(cfg, case.micro_batch, case.seq, dev, seed=rank)
            for _ in range(warmup):
                trainer.step(x, y)
            times = []
            for _ in range(repeats):
                dist.barrier()
                sync(device)
                t = time.perf_counter()
                trainer.step(x, y)
                sync(device)
                times.append(max_over_ranks(time.perf_counter() - t, device))
            results.append(times)
            del trainer, ddp, model, x, y
            _cleanup(device)
        if rank == 0:
            Path(out_path).write_text(json.dumps(results), encoding="utf-8")
    finally:
        dist.barrier()
        dist.destroy_process_group()


def measure_train_ddp(cases: list[TrainCase], device: str, dtype: str, threads: int, *, warmup: int = 2,
                      repeats: int = 5) -> list[list[float]]:
    """Step times of data-parallel cases (all with the same ``ranks``), in one group of local processes."""
    from .dist import launch

    if not cases:
        return []
    ranks = cases[0].ranks
    if any(c.ranks != ranks for c in cases):
        raise ValueError("all data-parallel cases of one call need the same number of ranks")
    return launch("ddp", ranks, {"device": device, "dtype": dtype, "threads": threads,
                                 "cases": [asdict(c) for c in cases], "warmup": warmup, "repeats": repeats})


def measure_infer(case: InferCase, device: str, dtype: str = "bf16", *, warmup: int = 1,
                  repeats: int = 5) -> tuple[list[float], list[float]]:
    """(prefill seconds per repeat, mean decode-step seconds per repeat) of one static batch with a KV cache:
    the prompt batch is prefilled, then ``output_len - 1`` greedy decode steps follow (contexts
    ``input_len + 1 ... input_len + output_len - 1``, as the estimator prices them)."""
    from ..testing.gpt import GPTConfig, build
    from .device import require_torch, time_steps, torch_dtype

    torch = require_torch()
    _cleanup(device)  # the previous case's tensors
    n_dec = case.output_len - 1
    cfg = GPTConfig(hidden=case.hidden, n_layers=case.layers, seq_len=case.input_len + case.output_len)
    model = build(cfg, device, torch_dtype(dtype)).eval()
    cache = model.new_cache(case.batch)
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, cfg.vocab, (case.batch, case.input_len), generator=g).to(device)
    first = torch.randint(0, cfg.vocab, (case.batch, 1), generator=g).to(device)

    def prefill() -> None:
        model.prefill(prompt, cache)

    def decode() -> None:
        tok = first
        for pos in range(case.input_len, case.input_len + n_dec):
            tok = model.decode(tok, cache, pos).argmax(-1)

    pre = time_steps(prefill, device, warmup=warmup, repeats=repeats)
    dec = [t / max(n_dec, 1) for t in time_steps(decode, device, warmup=warmup, repeats=repeats)] \
        if n_dec > 0 else []
    return pre, dec


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))
