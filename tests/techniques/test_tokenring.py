import numpy as np

from paraplan.techniques import tokenring as tr


def test_mha_tokenring_hides_earlier():
    r = tr.threshold_ratio("llama-2-7b", cluster="h100-pcie-node", cp=4)
    assert r.value > 1.0


def test_gqa_tokenring_does_not_help():
    # GQA's K/V blocks are smaller than the Q block: the one-directional ring already sends less
    r = tr.threshold_ratio("llama-3.1-8b", cluster="h100-pcie-node", cp=4)
    assert r.value <= 1.0


def test_mha_bytes_per_direction_smaller():
    r = tr.step_times("llama-2-7b", np.array([1024.0]), cluster="h100-pcie-node", cp=4)
    assert r["tokenring_comm_s"][0] < r["ring_comm_s"][0]


def test_step_at_least_attention():
    r = tr.step_times("llama-2-7b", np.array([256.0, 4096.0]), cluster="h100-pcie-node", cp=4)
    assert np.all(r["ring_step_s"] >= r["attn_s"]) and np.all(r["tokenring_step_s"] >= r["attn_s"])
