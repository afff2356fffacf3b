import pytest

from paraplan.techniques import hetero_serving as hs


def test_tco_per_hour_by_hand():
    # 35040 USD over 4 years = 1 USD/h; 1 kW x 1.5 PUE x 0.1 USD/kWh = 0.15 USD/h
    assert hs.tco_per_hour(35040, 4, 1000, 1.5, 0.1) == pytest.approx(1.15)


def test_request_cost_linear_in_price():
    a = hs.request_cost(2.0, 2.0, 1000, 100, 5000.0, 200.0)
    b = hs.request_cost(4.0, 4.0, 1000, 100, 5000.0, 200.0)
    assert b == pytest.approx(2 * a)


def test_same_pair_ratio_is_one_and_cheaper_decode_helps():
    same = hs.tco_ratio("llama-3.1-8b", 1024, 256, "h100-sxm", "h100-sxm", "h100-sxm", "h100-sxm")
    assert same.value == pytest.approx(1.0)
    cheap = hs.tco_ratio("llama-3.1-8b", 1024, 256, "h100-sxm", "h100-sxm", "h100-sxm", "h100-sxm",
                         prices={"h100-sxm": 2.5})
    assert cheap.value == pytest.approx(1.0)


def test_decode_heavy_weights_decode_pool():
    d = hs.disaggregated_cost("llama-3.1-8b", "h100-sxm", "l40s", 512, 2048)
    assert d["decode_tps"] > 0 and d["prefill_tps"] > d["decode_tps"]
    assert d["kv_transfer_s"] > 0
