"""Mirror-SD: draft overlapped with the target's suffix on a second device."""

from __future__ import annotations

import pytest

from paraplan.catalog import get_cluster, get_model
from paraplan.infer import InferenceConfig
from paraplan.techniques import mirror_sd as MS

T = get_model("qwen3-8b")
C = get_cluster("h100-sxm:1")
D = get_model("qwen3-0.6b")


def _run(**kw: object) -> dict[str, float]:
    base = dict(gamma=4, tau=3.0, batch=1, ctx=1024.0)
    base.update(kw)
    return MS.mirror_step(T, C, InferenceConfig(), D, C, **base)  # type: ignore[arg-type]


def test_mirror_not_slower_than_serial() -> None:
    r = _run(sync_s=0.0)
    assert r["mirror_step_s"] <= r["serial_step_s"] + 1e-12
    assert r["mirror_speedup"] == pytest.approx(r["tau"] * r["plain_s"] / r["mirror_step_s"])


def test_streaming_and_tau_help() -> None:
    assert _run(stream=4)["mirror_speedup"] >= _run(stream=1)["mirror_speedup"]
    assert _run(tau=4.0)["mirror_speedup"] > _run(tau=2.0)["mirror_speedup"]


def test_sync_cost_hurts() -> None:
    assert _run(sync_s=1e-3)["mirror_speedup"] < _run(sync_s=0.0)["mirror_speedup"]


def test_exit_fraction_bounds() -> None:
    with pytest.raises(ValueError):
        _run(exit_fraction=1.5)
