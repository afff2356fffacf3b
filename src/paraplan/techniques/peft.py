"""Parameter-efficient fine-tuning (PEFT) accounting, from the survey "Parameter-Efficient Fine-Tuning for Large
Models: A Comprehensive Survey" (Han et al., arXiv 2403.14608) and the LoRA paper it builds on (Hu et al.,
"LoRA: Low-Rank Adaptation of Large Language Models", ICLR'22, arXiv 2106.09685).

The estimator is :mod:`paraplan.finetune` (LoRA, QLoRA, adapters, full): trainable parameters
``sum r (d_in + d_out)`` over the adapted matrices, memory = frozen base at its bit width + (2 + 2 + 12) B per
trainable parameter + activations, and a step without the base's weight-gradient GEMMs. This module puts the LoRA
paper's GPT-3 175B setup (r = 4, W_q and W_v adapted in all 96 layers) into it.

Not modelled: prefix/prompt tuning (the survey's soft-prompt family), and accuracy.
"""

from __future__ import annotations

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..finetune import FinetuneConfig, FinetuneEstimate, estimate_finetune
from ..strategy import Strategy


def gpt3_setup(method: str, *, rank: int = 4, targets: tuple[str, ...] = ("q", "v"), cluster: str = "dgx-2",
               gpus: int = 128, tp: int = 16, pp: int = 8, global_batch: int = 32, seq_len: int = 2048,
               recompute: str = "full") -> FinetuneEstimate:
    """GPT-3 175B fine-tuned on V100s (the LoRA paper's hardware) with one model-parallel layout for both methods."""
    m = get_model("gpt-3-175b")
    c = get_cluster(f"{cluster}:{gpus}")
    st = Strategy(tp=tp, pp=pp, dp=gpus // (tp * pp), micro_batch=1, global_batch=global_batch,
                  recompute=recompute, precision="fp16")  # type: ignore[arg-type]
    return estimate_finetune(m, c, FinetuneConfig(method=method, rank=rank, targets=tuple(targets)), st, seq_len)


def lora_checkpoint_bytes(rank: int = 4, targets: tuple[str, ...] = ("q", "v")) -> ClaimValue:
    """Bytes of a LoRA checkpoint (the trainable A and B matrices in 16 bits)."""
    e = gpt3_setup("lora", rank=rank, targets=tuple(targets))
    return ClaimValue(e.checkpoint_bytes, {"trainable_params": e.trainable_params})


def full_checkpoint_bytes() -> ClaimValue:
    """Bytes of the full model's 16-bit weights (what full fine-tuning must save per task)."""
    e = gpt3_setup("full")
    return ClaimValue(e.checkpoint_bytes, {"params": e.total_params})


def trainable_reduction(rank: int = 4, targets: tuple[str, ...] = ("q", "v")) -> ClaimValue:
    """All parameters over LoRA's trainable parameters."""
    e = gpt3_setup("lora", rank=rank, targets=tuple(targets))
    return ClaimValue(e.total_params / e.trainable_params, {"trainable_params": e.trainable_params})


def model_state_bytes(method: str, rank: int = 4, targets: tuple[str, ...] = ("q", "v")) -> ClaimValue:
    """Training memory of the model states over all GPUs: frozen/trained weights, gradients, Adam states."""
    e = gpt3_setup(method, rank=rank, targets=tuple(targets))
    return ClaimValue(e.model_states_bytes_total, {"trainable_params": e.trainable_params,
                                                   "per_gpu_total_bytes": e.memory.total_bytes,
                                                   "per_gpu_components": e.memory.components_bytes})


def throughput_gain(rank: int = 4, targets: tuple[str, ...] = ("q", "v"), **layout: int) -> ClaimValue:
    """LoRA tokens/s over full fine-tuning tokens/s, same model-parallel layout."""
    lo = gpt3_setup("lora", rank=rank, targets=tuple(targets), **layout)  # type: ignore[arg-type]
    fu = gpt3_setup("full", **layout)  # type: ignore[arg-type]
    return ClaimValue(fu.step_time_s / lo.step_time_s, {
        "lora_tokens_per_s_per_gpu": lo.tokens_per_s_per_accelerator,
        "full_tokens_per_s_per_gpu": fu.tokens_per_s_per_accelerator,
        "lora_components_s": lo.time.components_s, "full_components_s": fu.time.components_s})
