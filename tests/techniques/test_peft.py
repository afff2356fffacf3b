import pytest

from paraplan.techniques import peft


def test_lora_gpt3_trainable_hand_computed():
    v = peft.lora_checkpoint_bytes(rank=4, targets=("q", "v"))
    assert v.details["trainable_params"] == 96 * 2 * 4 * (12288 + 12288)
    assert v.value == pytest.approx(2 * 96 * 2 * 4 * 24576)


def test_rank_scales_linearly():
    a = peft.lora_checkpoint_bytes(rank=4).value
    b = peft.lora_checkpoint_bytes(rank=8).value
    assert b == pytest.approx(2 * a)


def test_lora_faster_than_full_but_below_gemm_bound():
    g = peft.throughput_gain().value
    assert 1.0 < g < 1.5
