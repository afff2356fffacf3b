"""The planner (paraplan.search): enumeration against brute force, the one cost model, ranking, Pareto
frontier, rejection counts, legality as framework data, explanations and fixes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paraplan import catalog
from paraplan.errors import ConfigError
from paraplan.rules import Framework, get_framework
from paraplan.search import (
    AXES,
    build_space,
    cheapest_fixes,
    enumerate_legal,
    explain,
    layouts,
    nearest_feasible,
    parse_gpus,
    roofline_losses,
    search,
)
from paraplan.strategy import (
    PRECISIONS,
    RECOMPUTES,
    RULE_FIELDS,
    RULES,
    SCHEDULES,
    Strategy,
    StrategyArrays,
    check_strategy,
    enforced_rules,
    legality_masks,
)
from paraplan.train import Workload, estimate_training

FIELDS = ("tp", "pp", "cp", "dp", "ep", "vpp", "schedule", "micro_batch", "zero", "hsdp", "sp", "recompute",
          "precision")


def _grid(space) -> dict[str, np.ndarray]:
    """The whole candidate grid, built independently of the planner (meshgrid over axis indices)."""
    sizes = [space.size(a) for a in AXES]
    idx = np.meshgrid(*[np.arange(n) for n in sizes], indexing="ij")
    cols: dict[str, np.ndarray] = {}
    for a, ix in zip(AXES, idx, strict=True):
        ix = ix.reshape(-1)
        if a == "layout":
            for j, f in enumerate(AXES["layout"]):
                cols[f] = space.layout[ix, j]
        else:
            cols[AXES[a][0]] = space.values[a][ix]
    return cols


def _rows(cols: dict[str, np.ndarray]) -> np.ndarray:
    m = np.stack([np.asarray(cols[f]).astype(np.int64) for f in FIELDS], axis=1)
    return m[np.lexsort(m.T[::-1])]


@pytest.mark.parametrize("model_name,n,gb,fw_name,seq", [
    ("gpt-3-1.3b", 16, 32, "megatron", 2048),
    ("gpt-3-1.3b", 16, 32, "fsdp", 2048),
    ("mixtral-8x7b", 16, 16, "megatron", 4096),
    ("llama-2-7b", 24, 48, "deepspeed", 1024),
])
def test_enumeration_equals_brute_force(model_name: str, n: int, gb: int, fw_name: str, seq: int) -> None:
    model = catalog.get_model(model_name)
    cluster = catalog.get_cluster("dgx-h100", n)
    fw = get_framework(fw_name)
    space = build_space(model, n, fw, gb, ["bf16", "fp8"])
    en = enumerate_legal(model, cluster, space, seq, gb, fw)
    grid = _grid(space)
    s = StrategyArrays.from_columns(**grid, global_batch=gb)
    masks = legality_masks(model, cluster, s, seq, framework=fw)
    broken = np.zeros(len(s), dtype=bool)
    for m in masks.values():
        broken |= m
    assert en.n_candidates == len(s)
    assert en.rule_counts == {r: int(m.sum()) for r, m in masks.items()}
    legal = {f: c[~broken] for f, c in grid.items()}
    chunks = list(en.chunks(1000))
    got = {f: np.concatenate([c[f] for c in chunks]) for f in FIELDS}
    assert en.n_legal == int((~broken).sum()) == len(got["tp"]) > 0
    assert np.array_equal(_rows(got), _rows(legal))


def test_layouts_are_every_factorisation() -> None:
    lay = layouts(48)
    assert np.all(lay.prod(axis=1) == 48)
    assert len({tuple(r) for r in lay}) == len(lay)
    # ordered factorisations of 2^4 * 3 into 4 factors: C(7,3) * C(4,3)
    assert len(lay) == math.comb(7, 3) * math.comb(4, 3)


@st.composite
def _strategy_and_field(draw):
    s = Strategy(tp=draw(st.sampled_from([1, 2, 3, 4, 8, 16])), pp=draw(st.sampled_from([1, 2, 3, 5, 8, 96, 128])),
                 dp=draw(st.sampled_from([1, 2, 3, 8])), cp=draw(st.sampled_from([1, 2, 3, 4])),
                 ep=draw(st.sampled_from([1, 2, 3, 8])), sp=draw(st.booleans()), vpp=draw(st.sampled_from([1, 2, 3])),
                 schedule=draw(st.sampled_from(SCHEDULES)), micro_batch=draw(st.sampled_from([1, 2, 3, 4])),
                 global_batch=draw(st.sampled_from([1, 6, 8, 12, 64])), zero=draw(st.integers(0, 3)),
                 hsdp=draw(st.booleans()), recompute=draw(st.sampled_from(RECOMPUTES)),
                 precision=draw(st.sampled_from(PRECISIONS)))
    field = draw(st.sampled_from(list(Strategy.model_fields)))
    return s, field, draw(st.integers(0, 10_000))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_strategy_and_field())
def test_rule_fields_name_everything_a_rule_reads(case) -> None:
    """Changing a field a rule does not list never changes its verdict (the planner's counts rely on it)."""
    s, field, seed = case
    rng = np.random.default_rng(seed)
    alt = {"tp": 4, "pp": 3, "dp": 16, "cp": 2, "ep": 8, "sp": not s.sp, "vpp": 4, "micro_batch": 5,
           "global_batch": 48, "zero": (s.zero + 1) % 4, "hsdp": not s.hsdp, "optimizer": "sgd",
           "schedule": SCHEDULES[rng.integers(4)], "recompute": RECOMPUTES[rng.integers(3)],
           "precision": PRECISIONS[rng.integers(4)], "offload": ("none", "cpu", "nvme")[rng.integers(3)],
           "offload_params": ("none", "cpu", "nvme")[rng.integers(3)]}
    s2 = s.model_copy(update={field: alt[field]})
    for model_name in ("gpt-3-175b", "mixtral-8x7b"):
        model = catalog.get_model(model_name)
        cluster = catalog.get_cluster("dgx-a100", 64)
        a = legality_masks(model, cluster, s.to_arrays(), 2048)
        b = legality_masks(model, cluster, s2.to_arrays(), 2048)
        for rule in a:
            if field not in RULE_FIELDS[rule]:
                assert bool(a[rule][0]) == bool(b[rule][0]), (rule, field)


def test_every_rule_has_fields_and_an_explanation() -> None:
    assert set(RULE_FIELDS) == set(RULES)
    model = catalog.get_model("mixtral-8x7b")
    rules, _ = enforced_rules(model, catalog.get_cluster("dgx-h100", 16))
    assert "ep_needs_moe" not in rules and "ep_divides_experts" in rules


# ------------------------------------------------------------------ one cost model
@pytest.fixture(scope="module")
def gpt175():
    model = catalog.get_model("gpt-3-175b")
    cluster = catalog.get_cluster("dgx-a100", 1024)
    w = Workload(seq_len=2048)
    return model, cluster, w, search(model, cluster, 1536, w, top=10)


def test_planner_numbers_equal_paraplan_train(gpt175) -> None:
    """The planner prices through evaluate_training: its numbers equal estimate_training's."""
    model, cluster, w, res = gpt175
    assert res.top and res.pareto
    for plan in res.top + res.pareto:
        est = estimate_training(model, cluster, plan.strategy, w)
        assert plan.step_time_s == pytest.approx(est.step_time_s, rel=1e-12)
        assert plan.tokens_per_s == pytest.approx(est.tokens_per_s, rel=1e-12)
        assert plan.memory_bytes == pytest.approx(est.memory.total_bytes, rel=1e-12)
        assert plan.fits and est.fits
        for c, v in plan.time_components.items():
            assert v == pytest.approx(est.time.components_s[c], rel=1e-12, abs=1e-15)


def test_planner_numbers_equal_paraplan_train_over_a_range_of_counts() -> None:
    model = catalog.get_model("llama-3-70b")
    base = catalog.get_cluster("dgx-h100")
    w = Workload(seq_len=4096, tokens=1e12)
    res = search(model, base, 512, w, gpus=[64, 128, 256], framework="fsdp", objective="cost", top=5)
    assert {p.n_accelerators for p in res.best_by_gpus.values()} == {64, 128, 256}
    for plan in res.top + list(res.best_by_gpus.values()):
        est = estimate_training(model, base.with_accelerators(plan.n_accelerators), plan.strategy, w,
                                framework="fsdp")
        assert plan.tokens_per_s == pytest.approx(est.tokens_per_s, rel=1e-12)
        assert plan.to_json(res.price_per_hour, w.tokens)["cost_usd"] == pytest.approx(est.cost_usd, rel=1e-12)


def test_ranking_feasibility_and_counts(gpt175) -> None:
    _, _, _, res = gpt175
    scores = [p.score for p in res.top]
    assert scores == sorted(scores, reverse=True)
    assert res.rank_fraction(res.top[0].score) == 0.0
    assert res.feasible_scores.size == res.n_feasible > 0
    assert res.top[0].score == pytest.approx(res.feasible_scores.max())
    assert sum(res.rejected_by_memory.values()) == res.n_evaluated - res.n_feasible
    counts = res.rejected_by_rule.values()
    assert max(counts) <= res.n_illegal <= sum(counts)
    assert res.n_candidates == res.n_evaluated + res.n_illegal
    assert "accelerator_count" not in res.rejected_by_rule  # layouts use every accelerator by construction
    # distinct outcomes in the top list; equivalents carry identical numbers
    labels = [p.label() for p in res.top]
    assert len(set(labels)) == len(labels)
    assert all(not p.same_numbers(q) for i, p in enumerate(res.top) for q in res.top[i + 1:])


def test_pareto_frontier_is_non_dominated(gpt175) -> None:
    _, _, _, res = gpt175
    front = res.pareto
    assert res.top[0].tokens_per_s == pytest.approx(max(p.tokens_per_s for p in front))
    for p in front:
        for q in front + res.top:
            if q is p:
                continue
            dominates = (q.tokens_per_s >= p.tokens_per_s and q.headroom_bytes >= p.headroom_bytes
                         and (q.tokens_per_s > p.tokens_per_s or q.headroom_bytes > p.headroom_bytes))
            assert not dominates, (p.label(), q.label())
    heads = [p.headroom_bytes for p in sorted(front, key=lambda p: -p.tokens_per_s)]
    assert heads == sorted(heads)  # less throughput only for more headroom


def test_cost_and_throughput_objectives_pick_different_counts() -> None:
    model = catalog.get_model("gpt-3-175b")
    base = catalog.get_cluster("dgx-a100")
    w = Workload(seq_len=2048)
    fast = search(model, base, 1536, w, gpus=[256, 512, 1024, 2048], top=1)
    cheap = search(model, base, 1536, w, gpus=[256, 512, 1024, 2048], objective="cost", top=1)
    per_count = fast.best_by_gpus
    assert fast.best.n_accelerators == max(per_count, key=lambda n: per_count[n].tokens_per_s)
    cost = {n: n / p.tokens_per_s for n, p in cheap.best_by_gpus.items()}
    assert cheap.best.n_accelerators == min(cost, key=cost.get)
    assert cheap.best.n_accelerators < fast.best.n_accelerators
    # the Pareto frontier over counts keeps fewer accelerators only for less throughput
    assert {p.n_accelerators for p in fast.pareto} >= {256, 2048}


def test_restrict_narrows_the_space() -> None:
    model = catalog.get_model("gpt-3-175b")
    cluster = catalog.get_cluster("dgx-a100", 512)
    w = Workload(seq_len=2048)
    full = search(model, cluster, 512, w, top=3)
    narrow = search(model, cluster, 512, w, top=3, restrict={"tp": [8], "recompute": ["full"], "sp": [False]})
    assert 0 < narrow.n_evaluated < full.n_evaluated
    assert all(p.strategy.tp == 8 and p.strategy.recompute == "full" and not p.strategy.sp for p in narrow.top)
    assert narrow.best.tokens_per_s <= full.best.tokens_per_s
    with pytest.raises(ConfigError):
        search(model, cluster, 512, w, restrict={"colour": [1]})


# ------------------------------------------------------------------ legality as framework data
def test_uneven_pipeline_stages_follow_the_framework_data() -> None:
    model = catalog.get_model("gpt-3-175b")  # 96 layers
    cluster = catalog.get_cluster("dgx-a100", 40)
    s = Strategy(tp=8, pp=5, dp=1, global_batch=8)
    with pytest.raises(Exception, match="pp_divides_layers"):
        check_strategy(model, cluster, s, 2048, framework="megatron")
    check_strategy(model, cluster, s, 2048, framework="fsdp")  # torchtitan: uneven stages allowed
    assert get_framework("megatron").legality.uneven_pp is False
    assert get_framework("fsdp").uneven_pp is True


def test_tp_across_nodes_is_an_option() -> None:
    model = catalog.get_model("gpt-3-175b")
    cluster = catalog.get_cluster("dgx-a100", 32)
    s = Strategy(tp=16, pp=2, dp=1, global_batch=8, sp=True)
    with pytest.raises(Exception, match="tp_in_scaleup_domain"):
        check_strategy(model, cluster, s, 2048, framework="megatron")
    check_strategy(model, cluster, s, 2048, framework="megatron", tp_across_nodes=True)
    res = search(model, cluster, 64, Workload(seq_len=2048), tp_across_nodes=True, top=50)
    base = search(model, cluster, 64, Workload(seq_len=2048), top=50)
    assert res.n_evaluated > base.n_evaluated
    assert "tp_in_scaleup_domain" not in res.rejected_by_rule


def test_unknown_rule_in_framework_data_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown legality rule"):
        Framework(name="x", legality={"rules": ["tp_divides_heads", "no_such_rule"]})


def test_legality_rules_list_restricts_what_is_enforced() -> None:
    model = catalog.get_model("gpt-3-175b")
    cluster = catalog.get_cluster("dgx-a100", 8)
    fw = get_framework("megatron").model_copy(update={"legality": get_framework("megatron").legality.model_copy(
        update={"rules": ("accelerator_count",)})})
    s = Strategy(tp=5, dp=1, global_batch=8)  # tp does not divide 96 heads, and 5 != 8 accelerators
    masks = legality_masks(model, cluster, s.to_arrays(), 2048, framework=fw)
    assert set(masks) == {"accelerator_count"}


# ------------------------------------------------------------------ inputs
@pytest.mark.parametrize("text,per_node,expected", [
    ("1024", 8, [1024]), ("256..1024:x2", 8, [256, 512, 1024]), ("16..40", 8, [16, 24, 32, 40]),
    ("512,1024", 8, [512, 1024]), ("4..16:4", 8, [4, 8, 16]), ("1..8", 8, [1, 2, 4, 8]),
])
def test_parse_gpus(text: str, per_node: int, expected: list[int]) -> None:
    assert parse_gpus(text, per_node) == expected


@pytest.mark.parametrize("text,needle", [
    ("1000000", "outside"), ("0", "at least one"), ("12", "whole number"), ("2048..256", "LO <= HI"),
    ("8..100000", "too many"), ("abc", "not a count"), ("8..64:x1", "factor"),
])
def test_parse_gpus_rejects_absurd_input(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_gpus(text, 8)


def test_bad_requests_are_config_errors() -> None:
    model = catalog.get_model("gpt-3-1.3b")
    cluster = catalog.get_cluster("dgx-a100")
    for kw, needle in (({"global_batch": 0}, "at least 1"), ({"global_batch": 10**9}, "absurd"),
                       ({"objective": "speed"}, "objective"), ({"top": 0}, "top")):
        args = {"global_batch": 64, **kw}
        gb = args.pop("global_batch")
        with pytest.raises(ConfigError, match=needle):
            search(model, cluster, gb, Workload(seq_len=2048), **args)


# ------------------------------------------------------------------ empty spaces, fixes, explanations
def test_nothing_fits_reports_reasons_and_the_nearest_feasible_count() -> None:
    model = catalog.get_model("gpt-3-175b")
    cluster = catalog.get_cluster("dgx-a100", 8)
    w = Workload(seq_len=2048)
    res = search(model, cluster, 64, w)
    assert res.top == [] and res.n_feasible == 0 and res.n_evaluated > 0
    assert res.closest and all(not p.fits for p in res.closest)
    assert sum(res.rejected_by_memory.values()) == res.n_evaluated
    plan, note = nearest_feasible(model, cluster, 64, w, "megatron", 8)
    assert plan is not None and plan.fits and plan.n_accelerators > 8
    assert str(plan.n_accelerators) in note


def test_nothing_legal_reports_the_rules() -> None:
    model = catalog.get_model("gpt-3-175b")  # 96 heads, 96 layers
    cluster = catalog.get_cluster("dgx-a100", 1024)
    res = search(model, cluster, 1, Workload(seq_len=2048))  # batch 1: dp = 1, so tp*pp*cp = 1024
    assert res.n_evaluated == 0 and res.top == []
    assert res.rejected_by_rule and res.n_illegal == res.n_candidates


def test_cheapest_fixes_fit_and_are_ranked_by_throughput() -> None:
    model = catalog.get_model("gpt-3-175b")
    cluster = catalog.get_cluster("dgx-a100", 64)
    w = Workload(seq_len=2048)
    s = Strategy(tp=8, pp=8, dp=1, micro_batch=4, global_batch=64, sp=True, recompute="none")
    assert not estimate_training(model, cluster, s, w).fits
    fx = cheapest_fixes(model, cluster, s, w)
    assert fx.fixes and fx.overflow_bytes > 0
    per_acc = [f.tokens_per_s / f.n_accelerators for f in fx.fixes]
    assert per_acc == sorted(per_acc, reverse=True)
    kinds = {f.kind for f in fx.fixes}
    assert kinds & {"recompute", "micro_batch", "pp", "accelerators"}
    for f in fx.fixes:
        cl = cluster if f.n_accelerators == 64 else cluster.with_accelerators(f.n_accelerators)
        est = estimate_training(model, cl, f.strategy, w)
        assert est.fits and est.tokens_per_s == pytest.approx(f.tokens_per_s, rel=1e-12)
    assert fx.best_plan is not None and fx.best_plan.fits
    same_count = [f.tokens_per_s for f in fx.fixes if f.n_accelerators == 64]
    assert same_count and fx.best_plan.n_accelerators == 64
    assert fx.best_plan.tokens_per_s >= max(same_count) * (1 - 1e-12)


def test_explain_losses_add_up_and_the_fix_shrinks_the_largest() -> None:
    model = catalog.get_model("gpt-3-175b")
    cluster = catalog.get_cluster("dgx-a100", 1024)
    w = Workload(seq_len=2048)
    s = Strategy(tp=8, pp=16, dp=8, micro_batch=1, global_batch=256, sp=True, recompute="full")
    est = estimate_training(model, cluster, s, w)
    ex = explain(model, cluster, s, w)
    assert ex.roofline_s + sum(ex.losses.values()) == pytest.approx(est.step_time_s, rel=1e-9)
    assert ex.largest == max(ex.losses, key=ex.losses.get)
    assert ex.largest == "pipeline bubble"  # 16 stages, 32 micro-batches
    assert ex.shrink is not None and ex.shrink_loss_s < ex.losses[ex.largest]
    assert ex.shrink.fits
    assert ex.planner_best is not None and ex.planner_best.tokens_per_s > est.tokens_per_s
    roof, losses = roofline_losses(ex.shrink.values, model, cluster, ex.shrink.strategy, 2048)
    assert losses[ex.largest] == pytest.approx(ex.shrink_loss_s)
    # its rank among the planner's feasible strategies: some are faster (the planner's best is one), not all
    assert ex.n_feasible > 1 and 0.0 < ex.share_faster < 1.0
    # the planner's best ranks first in the same space
    best = explain(model, cluster, ex.planner_best.strategy, w)
    assert best.share_faster == 0.0 and best.planner_best is None and best.n_feasible == ex.n_feasible


def test_memory_first_pricing_finds_what_pricing_everything_finds() -> None:
    """The planner times only the strategies that fit; pricing every legal strategy fully gives the same
    feasible set, scores and best plan."""
    from paraplan.rules import get_framework
    from paraplan.search import build_space, enumerate_legal, search
    from paraplan.strategy import StrategyArrays
    from paraplan.train import Workload, evaluate_training

    model, cluster = catalog.get_model("llama-3-70b"), catalog.get_cluster("dgx-h100:64")
    w = Workload(seq_len=4096)
    fw = get_framework("megatron")
    res = search(model, cluster, 256, w, framework=fw, top=3)
    en = enumerate_legal(model, cluster, build_space(model, 64, fw, 256, ["bf16"]), 4096, 256, fw)
    scores = []
    for cols in en.chunks():
        out = evaluate_training(model, cluster, StrategyArrays.from_columns(**cols, global_batch=256, optimizer=0),
                                w, fw)
        scores.append(out["tokens_per_s"][out["fits"]])
    full = np.sort(np.concatenate(scores))
    assert res.n_feasible == full.size == res.n_timed and 0 < res.n_feasible < res.n_evaluated
    assert np.allclose(np.sort(res.feasible_scores), full)
    assert res.best.tokens_per_s == pytest.approx(full.max())


def test_nearest_misses_are_fully_priced() -> None:
    from paraplan.search import search
    from paraplan.train import Workload

    res = search(catalog.get_model("gpt-1t"), catalog.get_cluster("dgx-a100:8"), 8, Workload(seq_len=2048), top=1)
    assert res.n_feasible == 0 and res.closest
    for p in res.closest:
        assert np.isfinite(p.step_time_s) and p.tokens_per_s > 0
