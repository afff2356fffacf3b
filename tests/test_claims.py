"""``paraplan claims``: every paper claim is computed live and within its tolerance, or says why not."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from paraplan.claims import Claim, ClaimResult, load_claims, run_claims
from paraplan.cli import app

ALL = load_claims()


@pytest.fixture(scope="module")
def results() -> dict[str, ClaimResult]:
    return {r.claim.id: r for r in run_claims()}


@pytest.mark.parametrize("claim_id", [c.id for c in ALL])
def test_claim(results: dict[str, ClaimResult], claim_id: str) -> None:
    r = results[claim_id]
    assert r.error is None, r.error
    assert r.predicted is not None
    if r.claim.status == "modelled":
        assert r.ok, (f"{claim_id}: paper {r.claim.expected:.4g} {r.claim.unit}, paraplan {r.predicted:.4g} "
                      f"(tolerance {r.claim.tolerance_text})")
    else:  # a not-reproduced claim that starts passing must be promoted to modelled
        assert not r.ok, f"{claim_id} is within tolerance now: mark it modelled"
        assert r.claim.reason


def _claim(**kw: object) -> Claim:
    base: dict[str, object] = dict(id="x", paper_key="p", paper="P", citation="", claim="c", expected=100.0, unit="",
                                   tolerance=0.1, tolerance_abs=None, kind="within", module="m", compute="f", args={},
                                   source="", mechanism="m", status="modelled", reason="")
    base.update(kw)
    return Claim(**base)  # type: ignore[arg-type]


def test_tolerance_kinds() -> None:
    assert _claim().check(109.9) and not _claim().check(111) and not _claim().check(89)
    assert _claim(kind="at_least").check(1e9) and not _claim(kind="at_least").check(89)
    assert _claim(kind="at_most").check(0) and not _claim(kind="at_most").check(111)
    assert _claim(tolerance=None, tolerance_abs=5.0).check(104.9) and not _claim(tolerance_abs=5.0).check(106)
    assert not _claim().check(float("nan"))


def test_claims_cli_json(tmp_path) -> None:
    out = tmp_path / "claims.json"
    res = CliRunner().invoke(app, ["claims", "--paper", "megatron-ptdp", "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["claims"]
    for c in doc["claims"]:
        assert {"id", "paper", "expected", "predicted", "tolerance", "ok"} <= set(c)
    table = CliRunner().invoke(app, ["claims", "--paper", "megatron-ptdp"])
    assert table.exit_code == 0 and "ptdp" in table.output


def test_unknown_paper_gets_suggestions() -> None:
    res = CliRunner().invoke(app, ["claims", "--paper", "megatorn-ptdp"])
    assert res.exit_code == 2
    assert "megatron-ptdp" in res.output
