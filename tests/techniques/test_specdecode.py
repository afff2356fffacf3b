"""Speculative decoding helpers on top of paraplan.infer.speculative_step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraplan.catalog import get_cluster, get_model
from paraplan.infer import InferenceConfig, SpeculativeConfig
from paraplan.techniques import specdecode as S

M = get_model("llama-2-7b")
C = get_cluster("a100-sxm-80gb:1")
DRAFT = get_model("qwen3-0.6b")


def test_tau_matches_config() -> None:
    cfg = SpeculativeConfig(method="lookup", draft_len=5, acceptance_rate=0.7)
    assert float(S.expected_tokens(0.7, 5)) == pytest.approx(cfg.tau)
    assert float(S.expected_tokens(1.0, 5)) == 6.0


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 0.99), st.integers(1, 16), st.floats(0.0, 1.0))
def test_leviathan_bounds(a: float, g: int, c: float) -> None:
    s = float(S.leviathan_speedup(a, g, c))
    assert s <= g + 1 + 1e-9
    assert float(S.leviathan_speedup(a, g, 0.0)) >= s - 1e-12


def test_speedup_falls_with_batch_and_break_even() -> None:
    spec = SpeculativeConfig(method="lookup", draft_len=4, mean_accepted=2.5)
    sp = S.speedup_vs_batch(M, C, InferenceConfig(), spec, [1, 16, 256], 1024)
    assert sp[0] > sp[-1]
    b = S.break_even_batch(M, C, InferenceConfig(), spec, 1024)
    assert b is None or b > 1


def test_parallel_draft_never_slower_than_serial() -> None:
    spec = SpeculativeConfig(method="draft_model", draft_model=DRAFT, draft_len=4, mean_accepted=3.0)
    from paraplan.infer import speculative_step

    serial = speculative_step(M, C, InferenceConfig(), spec, 1, 1024)
    d = S.draft_model_time(DRAFT, get_cluster("h100-sxm:1"), 4, 1, 1024)
    par = S.parallel_draft_speedup(M, C, InferenceConfig(), spec, 1, 1024, draft_s=d)
    assert par.step_s == pytest.approx(max(d, serial.verify_s))
    assert np.isfinite(par.speedup)
    par_same = S.parallel_draft_speedup(M, C, InferenceConfig(), spec, 1, 1024, draft_s=serial.draft_s)
    assert par_same.speedup >= serial.speedup
