"""Typed, frozen specifications: models, accelerators, clusters.

Everything is in SI units: bytes, seconds, FLOP, FLOP/s, B/s, W, USD per hour.
The catalog YAML files under ``paraplan/catalog`` hold the facts (each entry with a ``source``);
this module only defines the shapes of those facts and derived quantities.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FfnKind = Literal["gelu", "relu", "relu2", "swiglu", "geglu"]
AttentionKind = Literal["mha", "gqa", "mqa", "mla"]

#: FFN kinds whose up projection is gated (three weight matrices instead of two).
GATED_FFN: frozenset[str] = frozenset({"swiglu", "geglu"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MLAConfig(_Frozen):
    """Multi-head latent attention (DeepSeek-V2/V3) ranks."""

    q_lora_rank: int | None = None  # None: plain query projection
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


class MoEConfig(_Frozen):
    """Mixture-of-experts FFN. Layers ``< first_dense_layers`` (and those not on ``layer_freq``) are dense."""

    n_experts: int
    top_k: int
    expert_ffn_hidden: int
    n_shared_experts: int = 0
    shared_expert_ffn_hidden: int | None = None  # default: expert_ffn_hidden
    first_dense_layers: int = 0
    layer_freq: int = 1  # every ``layer_freq``-th layer (after the dense ones) is MoE

    def n_moe_layers(self, n_layers: int) -> int:
        rest = max(n_layers - self.first_dense_layers, 0)
        return (rest + self.layer_freq - 1) // self.layer_freq if self.layer_freq > 1 else rest


class ModelSpec(_Frozen):
    """A decoder-only transformer's architecture."""

    name: str
    aliases: tuple[str, ...] = ()
    family: str = "gpt"
    source: str = ""
    n_layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    n_kv_heads: int | None = None  # None: equal to n_heads (MHA)
    head_dim: int | None = None  # None: hidden // n_heads
    ffn_hidden: int = Field(gt=0)  # dense FFN inner size (per matrix)
    ffn_kind: FfnKind = "gelu"
    vocab: int = Field(gt=0)
    tied_embeddings: bool = False
    learned_pos_emb: bool = False  # GPT-2/OPT-style absolute position table of size max_seq_len
    max_seq_len: int = 2048
    attention: AttentionKind | None = None  # None: inferred from head counts / mla
    mla: MLAConfig | None = None
    sliding_window: int | None = None  # tokens; None: full attention everywhere
    sliding_window_fraction: float = 1.0  # share of layers that use the window (e.g. 0.5 alternating)
    moe: MoEConfig | None = None
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    bias: bool = False
    params_published: float | None = None  # headline parameter count, for cross-checks only
    #: what the architecture has that the cost model does not price (e.g. state-space or linear-attention
    #: layers read as full attention); every estimate repeats these in its assumptions
    caveats: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        kv = self.kv_heads
        if self.n_heads % kv != 0:
            raise ValueError(f"{self.name}: n_heads={self.n_heads} not divisible by n_kv_heads={kv}")
        if self.attention == "mla" and self.mla is None:
            raise ValueError(f"{self.name}: attention 'mla' needs an 'mla' block")
        return self

    # -- derived ---------------------------------------------------------------------------------
    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads if self.n_kv_heads is not None else self.n_heads

    @property
    def dim_head(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden // self.n_heads

    @property
    def attention_kind(self) -> AttentionKind:
        if self.attention is not None:
            return self.attention
        if self.mla is not None:
            return "mla"
        if self.kv_heads == self.n_heads:
            return "mha"
        return "mqa" if self.kv_heads == 1 else "gqa"

    @property
    def gated(self) -> bool:
        return self.ffn_kind in GATED_FFN

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    def attention_params(self) -> int:
        """Weights of one attention block (no norms)."""
        h, nh = self.hidden, self.n_heads
        if self.mla is not None:
            m = self.mla
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            q = h * nh * qk if m.q_lora_rank is None else h * m.q_lora_rank + m.q_lora_rank * nh * qk
            kv_down = h * (m.kv_lora_rank + m.qk_rope_head_dim)
            kv_up = m.kv_lora_rank * nh * (m.qk_nope_head_dim + m.v_head_dim)
            o = nh * m.v_head_dim * h
            return q + kv_down + kv_up + o
        d = self.dim_head
        return h * nh * d + 2 * h * self.kv_heads * d + nh * d * h

    def dense_ffn_params(self) -> int:
        return (3 if self.gated else 2) * self.hidden * self.ffn_hidden

    def expert_ffn_params(self) -> int:
        assert self.moe is not None
        return (3 if self.gated else 2) * self.hidden * self.moe.expert_ffn_hidden

    def shared_ffn_params(self) -> int:
        assert self.moe is not None
        f = self.moe.shared_expert_ffn_hidden or self.moe.expert_ffn_hidden
        return (3 if self.gated else 2) * self.hidden * f * self.moe.n_shared_experts

    @property
    def n_moe_layers(self) -> int:
        return self.moe.n_moe_layers(self.n_layers) if self.moe else 0

    def embedding_params(self) -> int:
        emb = self.vocab * self.hidden
        pos = self.max_seq_len * self.hidden if self.learned_pos_emb else 0
        return emb + pos + (0 if self.tied_embeddings else emb)

    def n_params(self) -> int:
        """Total parameters (all experts), embeddings and LM head included."""
        l_moe = self.n_moe_layers
        l_dense = self.n_layers - l_moe
        per_layer_common = self.attention_params() + 2 * self.hidden
        total = self.n_layers * per_layer_common + l_dense * self.dense_ffn_params()
        if self.moe:
            router = self.hidden * self.moe.n_experts
            total += l_moe * (self.moe.n_experts * self.expert_ffn_params() + self.shared_ffn_params() + router)
        return total + self.embedding_params() + self.hidden

    def n_active_params(self) -> int:
        """Parameters touched per token (top-k experts plus shared)."""
        if not self.moe:
            return self.n_params()
        inactive = (self.moe.n_experts - self.moe.top_k) * self.expert_ffn_params() * self.n_moe_layers
        return self.n_params() - inactive


DType = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4"]


class AcceleratorSpec(_Frozen):
    """One accelerator (a GPU, one GCD of a multi-die part, an AI accelerator, or a CPU socket)."""

    name: str
    aliases: tuple[str, ...] = ()
    vendor: str
    family: str  # efficiency-curve family, e.g. "ampere", "hopper", "blackwell", "cdna2", "cpu"
    kind: Literal["gpu", "npu", "cpu"] = "gpu"
    source: str = ""
    peak_flops: dict[str, float]  # dense FLOP/s per dtype (no sparsity)
    memory_bytes: float
    memory_bw: float  # B/s
    scaleup_bw: float = 0.0  # per-accelerator, per-direction B/s over the scale-up fabric (NVLink, IF, ...)
    scaleup_name: str = ""
    scaleup_domain: int = 1  # accelerators reachable over the scale-up fabric
    pcie_bw: float = 32e9  # per-direction host link B/s
    tdp_w: float = 0.0
    price_per_hour: float = 0.0  # USD, on-demand list-ish; users override
    cores: int | None = None  # CPUs
    notes: str = ""

    def peak(self, dtype: str) -> float:
        """Dense peak for ``dtype`` with sensible fallbacks (fp16<->bf16, tf32->fp32)."""
        p = self.peak_flops
        if dtype in p:
            return p[dtype]
        fallbacks = {"bf16": ("fp16",), "fp16": ("bf16",), "tf32": ("fp32",), "fp8": ("bf16", "fp16"),
                     "fp4": ("fp8", "bf16"), "int8": ("fp8", "bf16"), "int4": ("int8", "fp8", "bf16")}
        for alt in fallbacks.get(dtype, ()):
            if alt in p:
                return p[alt]
        raise KeyError(f"{self.name} has no peak for {dtype}")


class LinkTier(_Frozen):
    """A network tier: per-accelerator, per-direction bandwidth and one-hop latency."""

    name: str
    bw: float  # B/s per accelerator per direction
    latency_s: float = 5e-6


class HostSpec(_Frozen):
    """One node's host side, for offloading model states: CPU memory and NVMe (per node, SI units)."""

    name: str = "generic dual-socket host"
    memory_bytes: float = 1.0e12  # CPU DRAM per node
    memory_bw: float = 200e9  # B/s per node (both sockets, achievable streaming)
    nvme_bytes: float = 15.36e12  # local NVMe per node
    nvme_bw: float = 12e9  # B/s per node (read; writes assumed the same)
    source: str = ("generic default (no host data in the catalog for this cluster): 1 TB DDR at 200 GB/s, "
                   "4x 3.84 TB NVMe at 12 GB/s")


class ClusterSpec(_Frozen):
    """Nodes of accelerators joined by a scale-up fabric, nodes joined by a scale-out network."""

    name: str
    aliases: tuple[str, ...] = ()
    source: str = ""
    accelerator: AcceleratorSpec
    per_node: int = Field(gt=0)
    n_nodes: int = Field(gt=0)
    scaleup: LinkTier
    scaleout: LinkTier
    scaleup_domain: int | None = None  # default: per_node (NVL72: 72 across trays)
    host: HostSpec | None = None  # CPU memory and NVMe per node (None: HostSpec's generic default)
    notes: str = ""

    @property
    def host_spec(self) -> HostSpec:
        """The node's host side (the catalog's, else a documented generic default)."""
        return self.host or HostSpec()

    @property
    def n_accelerators(self) -> int:
        return self.per_node * self.n_nodes

    @property
    def domain(self) -> int:
        return self.scaleup_domain or self.per_node

    def with_accelerators(self, n: int) -> ClusterSpec:
        """Same node type, scaled to ``n`` accelerators (rounded up to whole nodes when n > per_node)."""
        if n <= self.per_node:
            return self.model_copy(update={"per_node": n, "n_nodes": 1})
        nodes = -(-n // self.per_node)
        if nodes * self.per_node != n:
            raise ValueError(f"{n} accelerators is not a whole number of {self.per_node}-accelerator nodes")
        return self.model_copy(update={"n_nodes": nodes})
