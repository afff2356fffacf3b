"""The test GPT's architecture as a paraplan :class:`~paraplan.specs.ModelSpec` (no torch needed)."""

from __future__ import annotations

from ..specs import ModelSpec

#: head dimension and vocabulary of the test GPT used by ``paraplan calibrate`` and ``validate measured``
HEAD_DIM = 64
VOCAB = 4096


def gpt_model_spec(hidden: int, n_layers: int, *, head_dim: int = HEAD_DIM, vocab: int = VOCAB,
                   seq_len: int = 1024, name: str | None = None) -> ModelSpec:
    """GPT-2 style: learned positions, pre-norm LayerNorm, fused QKV, 4h GELU MLP, untied LM head, no biases."""
    if hidden % head_dim:
        raise ValueError(f"hidden={hidden} is not a multiple of head_dim={head_dim}")
    return ModelSpec(
        name=name or f"test-gpt-h{hidden}-l{n_layers}", family="gpt",
        source="paraplan.testing.gpt (plain PyTorch test model)", n_layers=n_layers, hidden=hidden,
        n_heads=hidden // head_dim, head_dim=head_dim, ffn_hidden=4 * hidden, ffn_kind="gelu", vocab=vocab,
        tied_embeddings=False, learned_pos_emb=True, max_seq_len=seq_len, norm="layernorm", bias=False,
    )
