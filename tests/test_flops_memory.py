"""Exact checks of the FLOP and activation-memory formulas against the papers they come from."""

from __future__ import annotations

import numpy as np
import pytest

from paraplan.cost import flops as F
from paraplan.cost import memory as M
from paraplan.specs import ModelSpec

# Narayanan et al. 2021, Table 1: (layers, hidden, heads)
NARAYANAN = [(24, 2304, 24), (30, 3072, 32), (36, 4096, 32), (40, 6144, 48), (48, 8192, 64), (60, 10240, 80),
             (80, 12288, 96), (96, 16384, 128), (105, 20480, 128), (128, 25600, 160)]


def gpt(layers: int, hidden: int, heads: int, vocab: int = 51200) -> ModelSpec:
    return ModelSpec(name="gpt", n_layers=layers, hidden=hidden, n_heads=heads, ffn_hidden=4 * hidden,
                     ffn_kind="gelu", vocab=vocab)


@pytest.mark.parametrize("l,h,a", NARAYANAN)
def test_narayanan_flops_formula(l: int, h: int, a: int) -> None:
    """Model FLOPs with full recompute equal 96 B s l h^2 (1 + s/6h + V/16lh) (Narayanan eq. 3)."""
    m, s, B = gpt(l, h, a), 2048, 512
    per_tok = float(F.model_flops_per_token(m, s, causal=False))
    head = 2.0 * m.vocab * h
    with_recompute = per_tok + (per_tok / 3.0 - head)  # one more forward of the layers, not of the head
    assert with_recompute * B * s == pytest.approx(F.narayanan_flops_per_step(B, s, l, h, m.vocab), rel=1e-12)
    # and 72 B s l h^2 (1 + s/6h + V/12lh) without recompute (Korthikanti et al. 2022, sec. 6)
    assert per_tok * B * s == pytest.approx(F.korthikanti_model_flops_per_step(B, s, l, h, m.vocab), rel=1e-12)


def test_causal_attention_halves_core_flops() -> None:
    m = gpt(24, 2048, 16)
    full = F.attention_core_flops_per_token(m, 4096, causal=False)
    causal = F.attention_core_flops_per_token(m, 4096, causal=True)
    assert causal == pytest.approx(full / 2)


def test_sliding_window_reduces_attention() -> None:
    base = gpt(24, 2048, 16)
    win = base.model_copy(update={"sliding_window": 512, "sliding_window_fraction": 1.0})
    full = float(F.attention_core_flops_per_token(base, 8192))
    assert float(F.attention_core_flops_per_token(win, 8192)) < 0.2 * full


# Korthikanti et al. 2022, Table 2: activation bytes per layer for s, b, h, a, t
@pytest.mark.parametrize("t", [1, 2, 4, 8])
def test_korthikanti_activation_table(t: int) -> None:
    m = gpt(96, 12288, 96)
    s, b, h, a = 2048, 1, 12288, 96
    tok = np.array([s * b], dtype=float)
    tp = np.array([t], dtype=float)

    def act(sp: bool, rec: int) -> float:
        return float(M.activation_bytes_per_layer(m, tok, s, tp, np.array([sp]), np.array([rec]), flash=False,
                                                  dropout=True)[0])

    sbh = s * b * h
    # tensor parallel only: sbh (10 + 24/t + 5as/(ht))
    assert act(False, 0) == pytest.approx(sbh * (10 + 24 / t + 5 * a * s / (h * t)))
    # tensor + sequence parallel: sbh/t (34 + 5as/h)
    if t > 1:
        assert act(True, 0) == pytest.approx(sbh / t * (34 + 5 * a * s / h))
        # + selective recompute: 34 sbh / t
        assert act(True, 1) == pytest.approx(34 * sbh / t)
    # tensor parallel + selective: sbh (10 + 24/t)
    assert act(False, 1) == pytest.approx(sbh * (10 + 24 / t))
    # full recompute keeps the layer input: 2 sbh (2 sbh / t with sequence parallelism)
    assert act(False, 2) == pytest.approx(2 * sbh)


def test_moe_active_flops_smaller_than_total() -> None:
    from paraplan.specs import MoEConfig

    m = ModelSpec(name="moe", n_layers=8, hidden=1024, n_heads=8, ffn_hidden=4096, ffn_kind="swiglu", vocab=32000,
                  moe=MoEConfig(n_experts=8, top_k=2, expert_ffn_hidden=4096))
    dense, moe, _ = F.weight_flops_per_token(m)
    assert dense == 0.0
    assert moe == pytest.approx(8 * (2 * m.attention_params() + 2 * 1024 * 8 + 2 * 2 * 3 * 1024 * 4096))
    assert m.n_active_params() < m.n_params()


@pytest.mark.parametrize("layers,hidden,heads", [(48, 6144, 64), (96, 12288, 96), (105, 20480, 128), (128, 25600, 160)])
def test_korthikanti_5x_activation_reduction(layers: int, hidden: int, heads: int) -> None:
    """Sequence parallelism + selective recompute cut activation memory about 5x against TP alone (abstract)."""
    m = gpt(layers, hidden, heads)
    s, t = 2048, 8
    tok = np.array([s], dtype=float)
    base = M.activation_bytes_per_layer(m, tok, s, np.array([t]), np.array([False]), np.array([0]), flash=False,
                                        dropout=True)[0]
    new = M.activation_bytes_per_layer(m, tok, s, np.array([t]), np.array([True]), np.array([1]), flash=False,
                                       dropout=True)[0]
    assert 4.5 <= base / new <= 6.5


def test_first_stage_holds_all_layers_of_activations_under_1f1b() -> None:
    """Korthikanti et al. 2022 sec. 4.2.3: with 1F1B the first stage keeps p micro-batches of L/p layers,
    i.e. the activations of all L layers for one micro-batch, whatever p is."""
    from paraplan import catalog
    from paraplan.strategy import StrategyArrays
    from paraplan.train import Workload, evaluate_training

    m = gpt(96, 12288, 96)
    cluster = catalog.get_cluster("dgx-a100", 512)
    cols = StrategyArrays.from_columns(tp=8, pp=np.array([4, 8, 16]), dp=np.array([16, 8, 4]), sp=True,
                                       recompute=1, micro_batch=1, global_batch=512)
    r = evaluate_training(m, cluster, cols, Workload(seq_len=2048, dropout=True, flash_attention=False), "megatron")
    per_layer = 34 * 2048 * 12288 / 8
    emb = 2048 * 12288 * 2.0
    np.testing.assert_allclose(r["mem.activations_first_stage"] - emb, 96 * per_layer, rtol=1e-9)
