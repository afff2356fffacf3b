"""Paper claims: what the systems papers measured, and what paraplan's own model predicts for the same setup.

Each paper is one YAML file in ``paraplan/catalog/claims/`` (data, with the paper's citation); each claim names a
function of one technique module in :mod:`paraplan.techniques` that computes the predicted value *live* through the
public estimators (``estimate_training``, ``estimate_inference``, ``simulate_serving``, the cost functions). No
claim holds its answer: the YAML holds the paper's number and the tolerance, the code holds the mechanism.

YAML layout (one file per paper)::

    key: megatron-ptdp                     # short name, used by ``paraplan claims --paper``
    paper: "Megatron-LM PTD-P (Narayanan et al., SC'21)"
    citation: "arXiv 2104.04473"
    module: paraplan.techniques.ptdp       # where the compute functions live
    claims:
      - id: ptdp.1t-per-gpu                # unique over all files
        claim: "1T GPT on 3072 A100s: model TFLOP/s per GPU"
        expected: 163.0e12                 # the paper's number, SI units
        unit: FLOP/s                       # for display: FLOP/s, B, s, tokens/s, x (ratio), % (fraction 0..1), ...
        tolerance: 0.10                    # relative (|pred - exp| <= tol * |exp|); or tolerance_abs: 0.02
        kind: within                       # within | at_least | at_most
        compute: per_gpu_flops             # function in ``module``; called as f(**args)
        args: {model: gpt3-1t, cluster: "dgx-a100-80gb:3072"}
        source: "Table 1, last row"        # where in the paper
        mechanism: "PTD-P t=8, p=64 ... "  # one line: how the model gets there
        status: modelled                   # or not_reproduced (then ``reason`` says why and what the gap is)
        reason: ""

A compute function returns a float or a :class:`ClaimValue` (value plus details shown by ``--json``).
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from .. import _yaml
from ..errors import ConfigError, UnknownNameError

Kind = Literal["within", "at_least", "at_most"]
Status = Literal["modelled", "not_reproduced"]

__all__ = ["Claim", "ClaimResult", "ClaimValue", "load_claims", "run_claims", "papers"]


@dataclass(frozen=True)
class ClaimValue:
    """What a compute function returns when it has more to say than one number."""

    value: float
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Claim:
    id: str
    paper_key: str
    paper: str
    citation: str
    claim: str
    expected: float
    unit: str
    tolerance: float | None
    tolerance_abs: float | None
    kind: Kind
    module: str
    compute: str
    args: dict[str, Any]
    source: str
    mechanism: str
    status: Status
    reason: str

    def check(self, predicted: float) -> bool:
        """Is ``predicted`` within this claim's tolerance of the paper's number?"""
        if not math.isfinite(predicted):
            return False
        if self.tolerance_abs is not None:
            slack = self.tolerance_abs
        else:
            slack = (self.tolerance or 0.0) * abs(self.expected)
        if self.kind == "at_least":
            return predicted >= self.expected - slack
        if self.kind == "at_most":
            return predicted <= self.expected + slack
        return abs(predicted - self.expected) <= slack

    @property
    def tolerance_text(self) -> str:
        if self.tolerance_abs is not None:
            t = f"±{self.tolerance_abs:g}"
        else:
            t = f"±{100 * (self.tolerance or 0.0):g}%"
        return {"within": t, "at_least": f">= ({t})", "at_most": f"<= ({t})"}[self.kind]


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    predicted: float | None
    ok: bool
    details: dict[str, Any]
    note: str
    error: str | None
    elapsed_s: float

    @property
    def gap(self) -> float | None:
        """Relative gap (predicted / expected - 1)."""
        if self.predicted is None or self.claim.expected == 0:
            return None
        return self.predicted / self.claim.expected - 1.0

    def to_json(self) -> dict[str, Any]:
        c = self.claim
        return {
            "id": c.id, "paper": c.paper, "paper_key": c.paper_key, "claim": c.claim, "expected": c.expected,
            "predicted": self.predicted, "unit": c.unit, "tolerance": c.tolerance, "tolerance_abs": c.tolerance_abs,
            "kind": c.kind, "ok": self.ok, "status": c.status, "gap": self.gap, "mechanism": c.mechanism,
            "source": c.source, "citation": c.citation, "reason": c.reason or None, "note": self.note or None,
            "error": self.error, "details": self.details, "elapsed_s": self.elapsed_s,
        }


def _claims_dir() -> Any:
    return resources.files("paraplan.catalog") / "claims"


def _parse(doc: dict[str, Any], where: str) -> list[Claim]:
    for k in ("key", "paper", "module", "claims"):
        if k not in doc:
            raise ConfigError(f"{where}: missing '{k}'")
    out = []
    for i, c in enumerate(doc["claims"]):
        loc = f"{where} claim {i} ({c.get('id', '?')})"
        for k in ("id", "claim", "expected", "compute"):
            if k not in c:
                raise ConfigError(f"{loc}: missing '{k}'")
        if c.get("tolerance") is None and c.get("tolerance_abs") is None:
            raise ConfigError(f"{loc}: needs 'tolerance' (relative) or 'tolerance_abs'")
        kind = c.get("kind", "within")
        status = c.get("status", "modelled")
        if kind not in ("within", "at_least", "at_most"):
            raise ConfigError(f"{loc}: kind must be within, at_least or at_most, not '{kind}'")
        if status not in ("modelled", "not_reproduced"):
            raise ConfigError(f"{loc}: status must be modelled or not_reproduced, not '{status}'")
        if status == "not_reproduced" and not c.get("reason"):
            raise ConfigError(f"{loc}: a not_reproduced claim must say why ('reason')")
        if not c.get("mechanism"):
            raise ConfigError(f"{loc}: missing 'mechanism' (one line: how the model computes it)")
        module = c.get("module", doc["module"])
        out.append(Claim(
            id=str(c["id"]), paper_key=str(doc["key"]), paper=str(doc["paper"]), citation=str(doc.get("citation", "")),
            claim=str(c["claim"]), expected=float(c["expected"]), unit=str(c.get("unit", "")),
            tolerance=None if c.get("tolerance") is None else float(c["tolerance"]),
            tolerance_abs=None if c.get("tolerance_abs") is None else float(c["tolerance_abs"]),
            kind=kind, module=str(module), compute=str(c["compute"]), args=dict(c.get("args") or {}),
            source=str(c.get("source", "")), mechanism=" ".join(str(c["mechanism"]).split()), status=status,
            reason=" ".join(str(c.get("reason", "")).split()),
        ))
    return out


@cache
def _all_claims() -> tuple[Claim, ...]:
    claims: list[Claim] = []
    for f in sorted(_claims_dir().iterdir(), key=lambda p: p.name):
        if not f.name.endswith((".yaml", ".yml")):
            continue
        doc = _yaml.load_text(f.read_text(encoding="utf-8")) or {}  # the package's YAML: parsed once per user
        claims += _parse(doc, f"claims/{f.name}")
    seen: set[str] = set()
    for c in claims:
        if c.id in seen:
            raise ConfigError(f"claim id '{c.id}' appears twice in catalog/claims")
        seen.add(c.id)
    return tuple(claims)


def papers() -> dict[str, str]:
    """Paper key -> paper title, for every paper with claims."""
    return {c.paper_key: c.paper for c in _all_claims()}


def load_claims(paper: str | None = None) -> list[Claim]:
    """Every claim, or those of one paper (its key, or a case-insensitive part of its title)."""
    claims = list(_all_claims())
    if paper is None:
        return claims
    p = paper.lower()
    chosen = [c for c in claims if c.paper_key.lower() == p] or [
        c for c in claims if p in c.paper_key.lower() or p in c.paper.lower()]
    if not chosen:
        import difflib

        keys = list(papers())
        raise UnknownNameError("paper", paper, difflib.get_close_matches(p, keys, n=5, cutoff=0.3) or keys[:10])
    return chosen


def _evaluate(claim: Claim) -> ClaimResult:
    t0 = time.perf_counter()
    try:
        fn = getattr(importlib.import_module(claim.module), claim.compute)
        out = fn(**claim.args)
    except Exception as exc:  # a claim that cannot be computed is reported, not hidden
        return ClaimResult(claim, None, False, {}, "", f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
    if isinstance(out, ClaimValue):
        value, details, note = float(out.value), dict(out.details), out.note
    else:
        value, details, note = float(out), {}, ""
    return ClaimResult(claim, value, claim.check(value), details, note, None, time.perf_counter() - t0)


def run_claims(paper: str | None = None, ids: Iterable[str] | None = None) -> list[ClaimResult]:
    """Evaluate the claims (all, one paper's, or the given ids) through the model, now."""
    claims = load_claims(paper)
    if ids is not None:
        want = set(ids)
        claims = [c for c in claims if c.id in want]
    return [_evaluate(c) for c in claims]
