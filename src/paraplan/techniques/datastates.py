"""DataStates-LLM: lazy asynchronous checkpointing (Maurya, Underwood, Rafique, Cappello, Nicolae; HPDC'24,
arXiv 2406.10707; extended as "Scalable Checkpointing for Transformer Models Using Composable State Providers",
arXiv 2601.16956).

Mechanism: the parameters and optimizer states do not change during the forward and backward passes, so their
device-to-host copy into pre-pinned host memory can run *during* the next forward/backward, and the flush from host
memory to the parallel file system runs in the background. Training blocks only for the part of the copy that does
not fit in that window, and for the previous flush when checkpoints come faster than flushes finish:

    synchronous (DeepSpeed torch.save):   T_block = T_D2H + T_write
    lazy asynchronous:                    T_block = max(0, T_D2H - T_fwd+bwd) + max(0, T_write - T_between)

End-to-end speedup over ``iters`` iterations with a checkpoint every ``k`` of them:
``(iters t_iter + n_ckpt T_sync) / (iters t_iter + n_ckpt T_block)``. The step time ``t_iter`` and its
forward/backward share come from :func:`paraplan.train.estimate_training`; the checkpoint size and stall from
:mod:`paraplan.techniques.resilience`.

Testbed (the paper's): ALCF Polaris, 4x A100-40GB per node, PCIe Gen4 host links, HPE Slingshot-11 (2 NICs per
node), Lustre file system; Megatron-DeepSpeed. Not modelled: the serialization of Python objects, the file-system
contention between ranks, the multi-level (host -> node-local -> PFS) flush pipeline and the paper's exact
per-rank write throughputs (not in our sources); the storage bandwidth is an input.
"""

from __future__ import annotations

from ..catalog import get_cluster, get_model
from ..claims import ClaimValue
from ..errors import ConfigError
from ..specs import ClusterSpec
from ..strategy import Strategy
from ..train import TrainingEstimate, Workload, estimate_training
from .resilience import checkpoint_bytes, checkpoint_stall

#: Polaris node (ALCF): 4x A100-SXM4-40GB, NVLink between them, 2x Slingshot-11 200 Gb/s NICs per node
POLARIS_PER_NODE = 4
POLARIS_NIC_GBS_PER_GPU = 2 * 25.0 / 4


def polaris(gpus: int) -> ClusterSpec:
    """ALCF Polaris with ``gpus`` accelerators (A100-40GB nodes of 4, 12.5 GB/s Slingshot per GPU)."""
    if gpus < 1 or (gpus > POLARIS_PER_NODE and gpus % POLARIS_PER_NODE):
        raise ConfigError(f"Polaris has nodes of {POLARIS_PER_NODE} GPUs; {gpus} is not a whole number of nodes")
    base = get_cluster("dgx-a100-40gb")
    per = min(gpus, POLARIS_PER_NODE)
    return base.model_copy(update={
        "name": "polaris", "per_node": per, "n_nodes": max(gpus // POLARIS_PER_NODE, 1),
        "scaleout": base.scaleout.model_copy(update={"name": "Slingshot-11", "bw": POLARIS_NIC_GBS_PER_GPU * 1e9}),
    })


def step_estimate(model: str, gpus: int, tp: int, pp: int, global_batch: int, micro_batch: int = 1,
                  seq_len: int = 2048, zero: int = 1) -> TrainingEstimate:
    """One Megatron-DeepSpeed training step on Polaris (bf16, ZeRO-1, selective recompute)."""
    m = get_model(model)
    c = polaris(gpus)
    dp = gpus // (tp * pp)
    st = Strategy(tp=tp, pp=pp, dp=dp, micro_batch=micro_batch, global_batch=global_batch, zero=zero,
                  recompute="selective")
    return estimate_training(m, c, st, Workload(seq_len=seq_len), framework="deepspeed")


def checkpoint_costs(model: str, gpus: int, tp: int, pp: int, global_batch: int, *, storage_gbs_per_gpu: float,
                     d2h_gbs_per_gpu: float = 25.0, every: int = 1, micro_batch: int = 1,
                     seq_len: int = 2048) -> dict[str, float]:
    """Step time, checkpoint size, and the blocking time of one synchronous and one lazy asynchronous checkpoint."""
    est = step_estimate(model, gpus, tp, pp, global_batch, micro_batch, seq_len)
    m = get_model(model)
    ckb = checkpoint_bytes(m)
    step = est.step_time_s
    window = step - est.time.components_s["optimizer"]
    sync = checkpoint_stall(ckb, gpus, storage_gbs_per_accelerator=storage_gbs_per_gpu,
                            d2h_gbs_per_accelerator=d2h_gbs_per_gpu, asynchronous=False)
    lazy = checkpoint_stall(ckb, gpus, storage_gbs_per_accelerator=storage_gbs_per_gpu,
                            d2h_gbs_per_accelerator=d2h_gbs_per_gpu, asynchronous=True, overlap_window_s=window,
                            interval_wall_s=every * step)
    return {"step_s": step, "fwd_bwd_s": window, "checkpoint_bytes": ckb, "d2h_s": sync["d2h_s"],
            "write_s": sync["write_s"], "sync_block_s": sync["stall_s"], "async_block_s": lazy["stall_s"],
            "fits": float(est.fits)}


def end_to_end_speedup(model: str, gpus: int, tp: int, pp: int, global_batch: int, *, storage_gbs_per_gpu: float,
                       d2h_gbs_per_gpu: float = 25.0, every: int = 1, iterations: int = 100,
                       micro_batch: int = 1, seq_len: int = 2048) -> ClaimValue:
    """Training time with synchronous checkpoints over training time with lazy asynchronous ones."""
    c = checkpoint_costs(model, gpus, tp, pp, global_batch, storage_gbs_per_gpu=storage_gbs_per_gpu,
                         d2h_gbs_per_gpu=d2h_gbs_per_gpu, every=every, micro_batch=micro_batch, seq_len=seq_len)
    n_ckpt = iterations // every
    t_sync = iterations * c["step_s"] + n_ckpt * c["sync_block_s"]
    t_async = iterations * c["step_s"] + n_ckpt * c["async_block_s"]
    return ClaimValue(t_sync / t_async, c)


def checkpoint_speedup(model: str, gpus: int, tp: int, pp: int, global_batch: int, *, storage_gbs_per_gpu: float,
                       d2h_gbs_per_gpu: float = 25.0, every: int = 1, micro_batch: int = 1,
                       seq_len: int = 2048) -> ClaimValue:
    """Blocking time of a synchronous checkpoint over that of a lazy asynchronous one (inf when it fully hides)."""
    c = checkpoint_costs(model, gpus, tp, pp, global_batch, storage_gbs_per_gpu=storage_gbs_per_gpu,
                         d2h_gbs_per_gpu=d2h_gbs_per_gpu, every=every, micro_batch=micro_batch, seq_len=seq_len)
    ratio = c["sync_block_s"] / c["async_block_s"] if c["async_block_s"] > 0 else float("inf")
    return ClaimValue(ratio, c, note="inf: the lazy copy and the flush hide completely" if ratio == float("inf")
                      else "")
