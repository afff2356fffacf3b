"""Universal Checkpointing (UCP): resume a checkpoint under any parallel layout (Lian et al., arXiv 2406.18820,
"Universal Checkpointing: A Flexible and Efficient Distributed Checkpointing System for Large-Scale DNN
Training with Reconfigurable Parallelism"; implemented in DeepSpeed, ``ds_to_universal``).

Mechanism: a distributed checkpoint is a set of shards whose shapes depend on the layout (TP splits a weight's rows
or columns, PP assigns whole layers, ZeRO-DP flattens and partitions the optimizer states, SP replicates).
UCP converts it once into per-parameter *atoms* (the consolidated fp32 parameter, Adam momentum and variance of each
tensor), then any target layout loads the slices of each atom it needs.

    atom bytes           = 12 B x P  (fp32 value, m, v)
    full checkpoint      = 16-bit weights (2 B x P) + fp32 optimizer states (12 B x P)  [resilience.checkpoint_bytes]
    conversion time      ~ max(read / (nodes x read BW), write / (nodes x write BW)),  read = the source
                           checkpoint's optimizer states, write = the atoms
    load time (target)   = atom bytes / (nodes x read BW)  (each rank reads only its slices)

Not modelled: loss continuity (the paper's functional claim), the per-pattern rules for padded vocabulary and
replicated parameters beyond their byte count, and metadata/serialization costs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog import get_model
from ..claims import ClaimValue
from ..errors import ConfigError
from ..specs import ModelSpec
from .resilience import checkpoint_bytes

TIB = 1024.0**4
GIB = 1024.0**3


@dataclass(frozen=True)
class Layout:
    """A parallel layout: tensor, pipeline, data (ZeRO stage) and sequence parallel degrees."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    sp: int = 1
    zero: int = 1

    @property
    def ranks(self) -> int:
        return self.tp * self.pp * self.dp * self.sp


def atom_bytes(model: ModelSpec) -> float:
    """Bytes of the universal (atom) checkpoint: fp32 parameter, momentum and variance per parameter."""
    return checkpoint_bytes(model) - checkpoint_bytes(model, include_optimizer=False)


def shard_bytes_per_rank(model: ModelSpec, layout: Layout) -> float:
    """Checkpoint bytes one rank holds in ``layout``: 16-bit weights split over TP x PP (replicated over DP/SP)
    plus fp32 optimizer states split over TP x PP and, with ZeRO >= 1, over DP too."""
    p = float(model.n_params())
    mp = layout.tp * layout.pp
    w = 2.0 * p / mp
    opt = 12.0 * p / mp / (layout.dp if layout.zero >= 1 else 1)
    return w + opt


def reshard(model: ModelSpec, src: Layout, dst: Layout, *, nodes: int, read_gbs_per_node: float,
            write_gbs_per_node: float) -> dict[str, float]:
    """Bytes and time to convert a ``src`` checkpoint to atoms and load it into ``dst``."""
    if nodes < 1 or not read_gbs_per_node > 0 or not write_gbs_per_node > 0:
        raise ConfigError("reshard needs >= 1 node and positive read/write bandwidths")
    p = float(model.n_params())
    src_total = checkpoint_bytes(model)
    atoms = atom_bytes(model)
    read_bw, write_bw = nodes * read_gbs_per_node * 1e9, nodes * write_gbs_per_node * 1e9
    convert = max(12.0 * p / read_bw, atoms / write_bw)
    load = atoms / read_bw  # 16-bit weights are re-derived from the fp32 atoms
    return {"source_checkpoint_bytes": src_total, "atom_bytes": atoms,
            "src_bytes_per_rank": shard_bytes_per_rank(model, src), "dst_bytes_per_rank": shard_bytes_per_rank(
                model, dst), "convert_s": convert, "load_s": load, "total_s": convert + load}


def full_checkpoint_tib(model: str) -> ClaimValue:
    """Size of a full training checkpoint (16-bit weights + fp32 Adam states), TiB."""
    m = get_model(model)
    b = checkpoint_bytes(m)
    return ClaimValue(b / TIB, {"bytes": b, "params": m.n_params(), "bytes_per_param": b / m.n_params()})


def weights_gib(model: str) -> ClaimValue:
    """Size of the 16-bit weights, GiB."""
    m = get_model(model)
    b = checkpoint_bytes(m, include_optimizer=False)
    return ClaimValue(b / GIB, {"bytes": b, "params": m.n_params()})
