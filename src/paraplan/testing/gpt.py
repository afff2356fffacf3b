"""A small GPT in plain PyTorch, for measuring real training and inference steps.

Architecture (GPT-2 style, what :meth:`GPTConfig.model_spec` tells paraplan): token and learned position
embeddings; ``n_layers`` pre-norm blocks of LayerNorm -> fused QKV projection -> causal scaled-dot-product
attention (PyTorch's fused kernel where the device has one) -> output projection -> residual, LayerNorm ->
``4h`` GELU MLP -> residual; a final LayerNorm and an untied LM head; no biases (linear layers and LayerNorms:
exactly the parameters paraplan counts for this ModelSpec).

Training is mixed precision the way paraplan prices it: parameters, activations and gradients in the
16-bit ``dtype``; AdamW on fp32 master copies (16-bit weights + 12 bytes/parameter of optimizer state);
gradients are all-reduced in 16 bits under DDP. ``checkpoint=True`` recomputes every block in the backward
pass (paraplan's ``recompute="full"``).

Inference keeps a KV cache per layer (``[batch, heads, max_len, head_dim]`` in ``dtype``): :meth:`GPT.prefill`
runs a batch of prompts and returns the last position's logits (as serving engines do), :meth:`GPT.decode`
appends one token per sequence and attends to the whole cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from ..specs import ModelSpec
from .spec import HEAD_DIM, VOCAB, gpt_model_spec


@dataclass(frozen=True)
class GPTConfig:
    """Architecture of the test GPT; ``seq_len`` is the largest sequence (size of the position table)."""

    hidden: int = 256
    n_layers: int = 2
    head_dim: int = HEAD_DIM
    vocab: int = VOCAB
    seq_len: int = 1024
    checkpoint: bool = False

    def __post_init__(self) -> None:
        if self.hidden % self.head_dim:
            raise ValueError(f"hidden={self.hidden} is not a multiple of head_dim={self.head_dim}")
        for k in ("hidden", "n_layers", "head_dim", "vocab", "seq_len"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be >= 1")

    @property
    def n_heads(self) -> int:
        return self.hidden // self.head_dim

    def model_spec(self, name: str | None = None) -> ModelSpec:
        """The same architecture as a paraplan :class:`~paraplan.specs.ModelSpec`."""
        return gpt_model_spec(self.hidden, self.n_layers, head_dim=self.head_dim, vocab=self.vocab,
                              seq_len=self.seq_len, name=name)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


KVCache = list[tuple[torch.Tensor, torch.Tensor]]


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.ln1 = nn.LayerNorm(h, bias=False)
        self.qkv = nn.Linear(h, 3 * h, bias=False)
        self.proj = nn.Linear(h, h, bias=False)
        self.ln2 = nn.LayerNorm(h, bias=False)
        self.fc1 = nn.Linear(h, 4 * h, bias=False)
        self.fc2 = nn.Linear(4 * h, h, bias=False)

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None,
                pos: int = 0) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if cache is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            kc, vc = cache
            kc[:, :, pos:pos + t] = k
            vc[:, :, pos:pos + t] = v
            if t == 1:  # decode: the new token attends to every cached one
                a = F.scaled_dot_product_attention(q, kc[:, :, :pos + 1], vc[:, :, :pos + 1])
            elif pos == 0:  # prefill of a fresh cache
                a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                raise NotImplementedError("chunked prefill onto a non-empty cache")
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, h))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab, cfg.hidden)
        self.pos = nn.Embedding(cfg.seq_len, cfg.hidden)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.hidden, bias=False)
        self.head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)

    def _embed(self, idx: torch.Tensor, pos: int = 0) -> torch.Tensor:
        t = idx.shape[1]
        if pos + t > self.cfg.seq_len:
            raise ValueError(f"sequence of {pos + t} tokens exceeds seq_len={self.cfg.seq_len}")
        return self.tok(idx) + self.pos(torch.arange(pos, pos + t, device=idx.device))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy (computed in fp32) of a ``[batch, seq]`` batch."""
        x = self._embed(idx)
        for blk in self.blocks:
            if self.cfg.checkpoint and self.training:
                x = _checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
        logits = self.head(self.ln_f(x))
        return F.cross_entropy(logits.float().view(-1, self.cfg.vocab), targets.reshape(-1))

    # ------------------------------------------------------------------ inference with a KV cache
    def new_cache(self, batch: int, max_len: int | None = None) -> KVCache:
        p = self.head.weight
        n = max_len or self.cfg.seq_len
        shape = (batch, self.cfg.n_heads, n, self.cfg.head_dim)
        return [(torch.empty(shape, dtype=p.dtype, device=p.device), torch.empty(shape, dtype=p.dtype, device=p.device))
                for _ in self.blocks]

    @torch.no_grad()
    def prefill(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Run the prompts ``idx`` ``[batch, len]`` into an empty ``cache``; logits of the last position."""
        x = self._embed(idx)
        for blk, c in zip(self.blocks, cache, strict=True):
            x = blk(x, c, 0)
        return self.head(self.ln_f(x[:, -1:]))

    @torch.no_grad()
    def decode(self, tok: torch.Tensor, cache: KVCache, pos: int) -> torch.Tensor:
        """One decode step: ``tok`` ``[batch, 1]`` at position ``pos`` (the cache holds ``pos`` tokens)."""
        x = self._embed(tok, pos)
        for blk, c in zip(self.blocks, cache, strict=True):
            x = blk(x, c, pos)
        return self.head(self.ln_f(x))


class Trainer:
    """One optimizer step per :meth:`step`: forward, backward, AdamW on fp32 master weights.

    ``module`` is what runs forward/backward (the model, or a DDP wrapper of it); ``model`` owns the
    parameters. With a 16-bit model the fp32 master copies (with preallocated fp32 gradients) hold the optimizer's
    view: each step copies the 16-bit gradients in, runs AdamW (PyTorch's fused single-pass implementation where
    the build has it, else the multi-tensor one) and copies the weights back. With an fp32 model AdamW updates the
    parameters directly.
    """

    def __init__(self, model: GPT, module: nn.Module | None = None, lr: float = 1e-4) -> None:
        self.model = model
        self.module = module if module is not None else model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.mixed = any(p.dtype != torch.float32 for p in self.params)
        if self.mixed:
            self.master = [p.detach().float().clone().requires_grad_(True) for p in self.params]
            for m in self.master:
                m.grad = torch.zeros_like(m)
        else:
            self.master = self.params
        try:
            self.opt = torch.optim.AdamW(self.master, lr=lr, weight_decay=0.1, fused=True)
            self.fused = True
        except (RuntimeError, ValueError, TypeError):  # builds or devices without the fused kernel
            self.opt = torch.optim.AdamW(self.master, lr=lr, weight_decay=0.1, foreach=True)
            self.fused = False

    def step(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        for p in self.params:
            p.grad = None
        loss = self.module(idx, targets)
        loss.backward()
        if self.mixed:
            with torch.no_grad():
                for m, p in zip(self.master, self.params, strict=True):
                    if p.grad is not None:
                        m.grad.copy_(p.grad)
        self.opt.step()
        if self.mixed:
            with torch.no_grad():
                for m, p in zip(self.master, self.params, strict=True):
                    p.copy_(m)
        return loss.detach()


def build(cfg: GPTConfig, device: str | torch.device = "cpu", dtype: torch.dtype = torch.bfloat16,
          seed: int = 0) -> GPT:
    """A freshly initialised model on ``device`` in ``dtype`` (same weights for the same seed)."""
    torch.manual_seed(seed)
    return GPT(cfg).to(device=device, dtype=dtype)


def random_batch(cfg: GPTConfig, batch: int, seq: int, device: str | torch.device = "cpu",
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, cfg.vocab, (batch, seq + 1), generator=g)
    return idx[:, :-1].contiguous().to(device), idx[:, 1:].contiguous().to(device)
