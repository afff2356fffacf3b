"""Correctness of the search against published strategies (issue 3, section 4).

For every row of Narayanan et al. 2021 Table 1 (rows 10-19 of ../shared/data/train-measured.csv) and
Korthikanti et al. 2022 (rows 21-28), the row's published strategy (``paraplan.validate.train.row_config``) is
searched for in the planner's space of the same accelerator count, global batch and sequence length (the
row's framework, precision and workload: unfused attention and dropout for these pre-2023 runs):

* the published strategy is legal in that space and fits, and the planner's best is predicted at least as
  fast (must hold for every row);
* the published strategy ranks in the top 5 % of the feasible strategies (holds for 3 of the 18 rows; the
  others are strict xfails with the measured rank, see docs/performance.md "Correctness of the search":
  Narayanan's weak-scaling runs use full recompute and tp = 8 throughout, and Korthikanti's full-recompute
  rows are the baselines the same paper beats by 1.3x with selective recompute, so the cost model ranks them
  low, and it does so too in a space restricted to the features of their year).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paraplan.search import search
from paraplan.strategy import check_strategy
from paraplan.train import estimate_training
from paraplan.validate.train import read_rows, row_config

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train-measured.csv"
pytestmark = pytest.mark.skipif(not DATA.is_file(), reason="../shared/data/train-measured.csv not present")

ROWS = [str(i) for i in range(10, 20)] + [str(i) for i in range(21, 29)]

#: rows whose published strategy is not in the top 5 % of the planner's feasible strategies (measured share of
#: feasible strategies predicted strictly faster; planner best / published tokens/s). Strict: a row that starts
#: passing must be noticed.
NOT_TOP5 = {
    "10": "15 % faster strategies (best 1.37x): full recompute, none needed for 1.7B on 32 GPUs",
    "11": "49 % (best 1.53x): full recompute, tp=2 without sequence parallelism",
    "12": "68 % (best 1.78x): full recompute, tp=4 without sequence parallelism",
    "13": "82 % (best 1.96x): full recompute, tp=8 without sequence parallelism",
    "14": "71 % (best 1.79x): full recompute, tp=8 without sequence parallelism",
    "15": "78 % (best 1.67x): full recompute, tp=8 without sequence parallelism",
    "16": "55 % (best 1.64x): full recompute, tp=8 without sequence parallelism",
    "17": "33 % (best 1.58x): full recompute, 1F1B with 16 stages",
    "18": "22 % (best 1.56x): full recompute, 1F1B with 35 stages",
    "19": "35 % (best 1.54x): full recompute, 1F1B with 64 stages",
    "21": "58 % (best 1.65x): the paper's full-recompute baseline",
    "22": "10 % (best 1.15x): tp=8 dp=1 micro-batch 4 fixed by the paper's experiment",
    "23": "40 % (best 1.50x): the paper's full-recompute baseline",
    "25": "28 % (best 1.42x): the paper's full-recompute baseline",
    "27": "50 % (best 1.52x): the paper's full-recompute baseline",
}


@pytest.fixture(scope="module")
def searched() -> dict[str, tuple]:
    rows = {r["row_id"]: r for r in read_rows(DATA)}
    out = {}
    for rid in ROWS:
        model, cluster, strategy, workload, fw, _ = row_config(rows[rid])
        est = estimate_training(model, cluster, strategy, workload, framework=fw, check=False)
        res = search(model, cluster, strategy.global_batch, workload, framework=fw, precisions=[strategy.precision],
                     top=3)
        out[rid] = (model, cluster, strategy, workload, fw, est, res)
    return out


@pytest.mark.parametrize("row_id", ROWS)
def test_planner_best_is_at_least_as_fast_as_the_published_strategy(searched, row_id: str) -> None:
    model, cluster, strategy, workload, fw, est, res = searched[row_id]
    check_strategy(model, cluster, strategy, workload.seq_len, framework=fw)  # in the planner's space ...
    assert est.fits  # ... and feasible
    assert res.best is not None
    assert res.best.tokens_per_s >= est.tokens_per_s * (1 - 1e-12), (row_id, res.best.label())
    # the published strategy is one of the feasible scores the planner saw
    assert any(abs(s - est.tokens_per_s) <= 1e-9 * est.tokens_per_s for s in res.feasible_scores)


@pytest.mark.parametrize("row_id", [
    pytest.param(r, marks=pytest.mark.xfail(strict=True, reason=NOT_TOP5[r])) if r in NOT_TOP5 else r for r in ROWS
])
def test_published_strategy_ranks_in_the_top_5_percent(searched, row_id: str) -> None:
    *_, est, res = searched[row_id]
    share = res.rank_fraction(est.tokens_per_s)
    assert share <= 0.05, f"row {row_id}: {share:.1%} of {res.n_feasible} feasible strategies are faster " \
        f"(best {res.best.label()}, {res.best.tokens_per_s / est.tokens_per_s:.2f}x)"
