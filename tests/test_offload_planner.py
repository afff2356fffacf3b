"""Offloading model states (ZeRO-Offload / ZeRO-Infinity) in the one cost model: the estimator, the rules and the
planner (issue 3's "offload (when modelled)" and the ZeRO-Infinity part of the techniques issue)."""

from __future__ import annotations

import numpy as np
import pytest

from paraplan import Strategy, Workload, catalog, estimate_training
from paraplan.errors import InvalidStrategyError
from paraplan.search import cheapest_fixes, search
from paraplan.strategy import check_strategy
from paraplan.train import MEMORY_COMPONENTS, TIME_COMPONENTS

GPT3 = catalog.get_model("gpt-3-175b")
A100x64 = catalog.get_cluster("dgx-a100:64")


def _est(**kw: object) -> object:
    base = dict(tp=8, pp=1, dp=8, zero=1, global_batch=512, micro_batch=1, sp=True, recompute="full")
    base.update(kw)
    return estimate_training(GPT3, A100x64, Strategy(**base), framework="deepspeed")  # type: ignore[arg-type]


def test_optimizer_offload_moves_exactly_the_optimizer_states_off_the_device() -> None:
    on, off = _est(), _est(offload="cpu")
    assert off.memory.components_bytes["optimizer_states"] == 0.0
    moved = on.memory.components_bytes["optimizer_states"]
    assert off.host_memory_bytes == pytest.approx(moved)
    assert on.memory.total_bytes - off.memory.total_bytes == pytest.approx(moved)
    assert off.time.components_s["offload"] > 0.0 and on.time.components_s["offload"] == 0.0
    for est in (on, off):  # components still add up
        assert sum(est.time.components_s.values()) == pytest.approx(est.step_time_s)
        assert sum(est.memory.components_bytes[c] for c in MEMORY_COMPONENTS) == pytest.approx(est.memory.total_bytes)


def test_zero2_offload_also_moves_gradients_and_nvme_holds_what_the_host_does_not() -> None:
    cpu, nvme = _est(zero=2, offload="cpu"), _est(zero=2, offload="nvme")
    assert cpu.memory.components_bytes["gradients"] == 0.0
    assert nvme.host_memory_bytes == 0.0 and nvme.nvme_bytes == pytest.approx(cpu.host_memory_bytes)
    assert nvme.step_time_s > cpu.step_time_s  # NVMe is slower than host memory


def test_offload_time_grows_as_pcie_and_host_bandwidth_shrink() -> None:
    slow_acc = A100x64.accelerator.model_copy(update={"pcie_bw": A100x64.accelerator.pcie_bw / 8})
    slow = A100x64.model_copy(update={"accelerator": slow_acc})
    st = Strategy(tp=8, pp=1, dp=8, zero=3, global_batch=512, sp=True, recompute="full", offload="cpu",
                  offload_params="cpu")
    fast_t = estimate_training(GPT3, A100x64, st, framework="deepspeed").time.components_s["offload"]
    slow_t = estimate_training(GPT3, slow, st, framework="deepspeed").time.components_s["offload"]
    assert slow_t > fast_t


def test_host_memory_overflow_makes_a_plan_not_fit() -> None:
    host = A100x64.host_spec.model_copy(update={"memory_bytes": 10e9})
    tiny = A100x64.model_copy(update={"host": host})
    est = estimate_training(GPT3, tiny, Strategy(tp=8, pp=1, dp=8, zero=3, global_batch=512, sp=True,
                                                 recompute="full", offload="cpu", offload_params="cpu"),
                            framework="deepspeed")
    assert est.memory.total_bytes < est.memory.capacity_bytes and not est.fits
    assert "host" in (est.memory.overflow_component or "")


@pytest.mark.parametrize("fw,strategy,rule", [
    ("megatron", dict(offload="nvme"), "offload_supported"),
    ("megatron", dict(zero=3, offload_params="cpu"), "offload_supported"),
    ("deepspeed", dict(zero=1, offload_params="cpu"), "offload_params_needs_zero3"),
])
def test_offload_rules(fw: str, strategy: dict, rule: str) -> None:
    st = Strategy(tp=8, pp=1, dp=8, global_batch=512, **strategy)
    with pytest.raises(InvalidStrategyError) as e:
        check_strategy(GPT3, A100x64, st, 2048, framework=fw)
    assert e.value.rule in (rule, "zero_needs_dp", "offload_supported")
    assert rule in str(e.value)


def test_a_1t_model_fits_one_dgx2_only_with_nvme() -> None:
    """ZeRO-Infinity sec. 5: one DGX-2 (16x V100 32 GB, 1.5 TB host memory) holds a 1T model only with NVMe."""
    m, c = catalog.get_model("gpt-1t"), catalog.get_cluster("dgx-2:16")
    w = Workload(seq_len=2048)
    plain = search(m, c, 32, w, framework="deepspeed", top=1)
    assert plain.n_feasible == 0
    cpu_only = search(m, c, 32, w, framework="fsdp", top=1, offload=True)  # FSDP offloads to host memory only
    assert cpu_only.n_feasible == 0
    nvme = search(m, c, 32, w, framework="deepspeed", top=1, offload=True)
    assert nvme.best is not None and "nvme" in (nvme.best.strategy.offload, nvme.best.strategy.offload_params)


def test_planner_offload_axis_is_off_unless_allowed() -> None:
    w = Workload(seq_len=2048)
    res = search(GPT3, A100x64, 512, w, framework="deepspeed", top=3)
    assert all(p.strategy.offload == "none" and p.strategy.offload_params == "none" for p in res.top)
    res2 = search(GPT3, A100x64, 512, w, framework="deepspeed", top=3, offload=True)
    assert res2.n_evaluated > res.n_evaluated and res2.best.tokens_per_s >= res.best.tokens_per_s * (1 - 1e-9)


def test_planner_offload_number_equals_the_estimator() -> None:
    res = search(catalog.get_model("gpt-1t"), catalog.get_cluster("dgx-2:16"), 32, Workload(seq_len=2048),
                 framework="deepspeed", top=1, offload=True)
    est = estimate_training(catalog.get_model("gpt-1t"), catalog.get_cluster("dgx-2:16"), res.best.strategy,
                            Workload(seq_len=2048), framework="deepspeed")
    assert est.step_time_s == pytest.approx(res.best.step_time_s, rel=1e-12)
    assert np.isclose(est.time.components_s["offload"], res.best.values["time.offload"])
    assert set(TIME_COMPONENTS) >= {"offload"}


def test_cheapest_fixes_offer_offload_where_it_makes_a_plan_fit() -> None:
    st = Strategy(tp=8, pp=1, dp=8, zero=1, global_batch=512, sp=True, recompute="full")
    fixes = cheapest_fixes(GPT3, A100x64, st, Workload(seq_len=2048), framework="deepspeed", limit=30)
    off = [f for f in fixes.fixes if f.kind == "offload"]
    assert off and all(f.fits for f in off)
    # ranked by throughput: offloading parameters over PCIe is slower than re-partitioning with pipeline stages
    assert fixes.fixes[0].kind == "pp" and fixes.fixes[0].tokens_per_s > off[0].tokens_per_s
