from paraplan.techniques import flexllm as F

KW = dict(mean_input=246, mean_output=322)


def test_fraction_falls_with_load():
    lo = F.finetune_fraction_under_load("llama-3.1-8b", "a100-sxm-80gb:1", 2.0, 0.1, **KW).value
    hi = F.finetune_fraction_under_load("llama-3.1-8b", "a100-sxm-80gb:1", 10.0, 0.1, **KW).value
    assert 0.0 <= hi < lo <= 1.0


def test_no_load_is_peak():
    assert F.finetune_fraction_under_load("llama-3.1-8b", "a100-sxm-80gb:1", 0.0, 0.1, **KW).value == 1.0


def test_looser_slo_leaves_more_room():
    a = F.finetune_tokens_per_iteration("llama-3.1-8b", "a100-sxm-80gb:1", 5.0, 0.05, **KW)["ft_tokens"]
    b = F.finetune_tokens_per_iteration("llama-3.1-8b", "a100-sxm-80gb:1", 5.0, 0.2, **KW)["ft_tokens"]
    assert b > a
