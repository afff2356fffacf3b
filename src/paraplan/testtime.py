"""Test-time scaling planner: which strategy and how many samples (or tokens) under a latency or cost budget.

The accuracy side is data the user supplies (an accuracy-vs-samples or accuracy-vs-tokens curve, measured on
their task); the cost side is paraplan's: every option is priced with the serving estimator
(:func:`paraplan.infer.estimate_inference`: latency, USD) and with the Kinetics cost model
(:func:`paraplan.techniques.kinetics.dense_cost`: eFLOPs, compute plus KV-memory access). Strategies:

* ``best_of_n`` / ``self_consistency``: ``N`` independent samples of ``tokens_per_sample`` tokens, decoded as
  one batch of ``N`` sequences that share the prompt (selection by a verifier or by majority vote: the curve
  says which; the cost is the same);
* ``parallel_reasoning``: ``N`` parallel reasoning paths of ``tokens_per_sample`` tokens each, then one
  summary of ``summary_tokens`` over their concatenation (ParaThinker/APR style);
* ``long_reasoning``: one chain of ``T`` tokens (the curve's x is tokens).

The saturation point follows TTSPM (:mod:`paraplan.techniques.ttspm`): for sample curves a single ``p`` is
fitted to ``1 - (1 - p)^N`` and ``N*`` is the first ``N`` whose marginal gain is below ``epsilon``; for every
curve the *empirical* saturation point is the first measured x after which the gain per doubling of x falls
below ``epsilon``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import _yaml
from .errors import ConfigError, ParaplanError
from .infer import InferenceConfig, InferenceEstimate, estimate_inference
from .specs import ClusterSpec, ModelSpec
from .techniques import kinetics, ttspm

Strategy = Literal["best_of_n", "self_consistency", "parallel_reasoning", "long_reasoning"]
STRATEGIES: tuple[str, ...] = ("best_of_n", "self_consistency", "parallel_reasoning", "long_reasoning")


@dataclass(frozen=True)
class Curve:
    """Accuracy of one strategy against samples (``x = samples``) or generated tokens (``x = tokens``)."""

    strategy: str
    x: Literal["samples", "tokens"]
    points: tuple[tuple[float, float], ...]
    tokens_per_sample: float | None = None
    summary_tokens: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy '{self.strategy}' (one of {', '.join(STRATEGIES)})")
        if self.x not in ("samples", "tokens"):
            raise ConfigError(f"curve x must be 'samples' or 'tokens', got '{self.x}'")
        if self.strategy == "long_reasoning" and self.x != "tokens":
            raise ConfigError("a long_reasoning curve is accuracy against tokens (x: tokens)")
        if self.strategy != "long_reasoning" and self.x == "samples" and not self.tokens_per_sample:
            raise ConfigError(f"a {self.strategy} curve against samples needs tokens_per_sample")
        if len(self.points) < 1:
            raise ConfigError("a curve needs at least one point")
        xs = [p[0] for p in self.points]
        if any(x <= 0 for x in xs) or sorted(xs) != xs or len(set(xs)) != len(xs):
            raise ConfigError(f"curve x values must be positive and strictly increasing, got {xs}")
        for x, a in self.points:
            if not (0.0 <= a <= 1.0):
                raise ConfigError(f"accuracy must be a fraction within 0-1, got {a} at x = {x:g}")

    @property
    def xs(self) -> np.ndarray:
        return np.array([p[0] for p in self.points], dtype=float)

    @property
    def accs(self) -> np.ndarray:
        return np.array([p[1] for p in self.points], dtype=float)

    def accuracy(self, x: float) -> float:
        """Accuracy at ``x``: linear in log x between measured points, flat beyond the last (no extrapolation)."""
        xs, ac = self.xs, self.accs
        if x <= xs[0]:
            return float(ac[0])
        return float(np.interp(math.log(x), np.log(xs), ac))


# ----------------------------------------------------------------------------- reading curves
def parse_points(text: str) -> tuple[tuple[float, float], ...]:
    """``"1:0.30,8:0.45,32:0.53"`` -> points (accuracy as a fraction, or a percent above 1)."""
    out = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if ":" not in part:
            raise ConfigError(f"point '{part}' is not X:ACCURACY")
        x, a = part.split(":", 1)
        try:
            xv, av = float(x), float(a.rstrip("%"))
        except ValueError:
            raise ConfigError(f"point '{part}' is not X:ACCURACY (numbers)") from None
        out.append((xv, av / 100.0 if (a.strip().endswith("%") or av > 1.0) else av))
    if not out:
        raise ConfigError("no points given")
    return tuple(out)


def load_curves(path: str | Path) -> tuple[list[Curve], dict[str, Any]]:
    """Curves from a YAML file (``strategies: [{strategy, x, points, tokens_per_sample}]``, plus optional
    ``model``, ``input_len``, ``source``) or a CSV (``strategy,x,value,accuracy[,tokens_per_sample]``)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(2, "No such file", str(p))
    if p.suffix.lower() == ".csv":
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        with open(p, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            need = {"strategy", "x", "value", "accuracy"}
            if not reader.fieldnames or not need <= set(reader.fieldnames):
                raise ConfigError(f"{p}: CSV needs the columns {', '.join(sorted(need))}")
            for i, r in enumerate(reader, start=2):
                try:
                    key = (r["strategy"].strip(), r["x"].strip())
                    d = rows.setdefault(key, {"points": [], "tps": None})
                    d["points"].append((float(r["value"]), float(r["accuracy"])))
                    if r.get("tokens_per_sample"):
                        d["tps"] = float(r["tokens_per_sample"])
                except (ValueError, AttributeError):
                    raise ConfigError(f"{p} line {i}: bad number in {dict(r)}") from None
        curves = [Curve(strategy=s, x=x, points=tuple(sorted(d["points"])), tokens_per_sample=d["tps"],  # type: ignore[arg-type]
                        source=str(p)) for (s, x), d in rows.items()]
        return curves, {}
    doc = _yaml.read_user_file(p, ConfigError) or {}
    if not isinstance(doc, dict) or "strategies" not in doc:
        raise ConfigError(f"{p}: a YAML curve file needs 'strategies' (a list)")
    curves = []
    for i, s in enumerate(doc["strategies"]):
        try:
            pts = tuple((float(a), float(b)) for a, b in s["points"])
            curves.append(Curve(strategy=str(s["strategy"]), x=str(s.get("x", "samples")),  # type: ignore[arg-type]
                                points=pts, tokens_per_sample=s.get("tokens_per_sample"),
                                summary_tokens=float(s.get("summary_tokens", 0.0)),
                                source=str(doc.get("source", p))))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{p}: strategy {i}: {exc}") from None
    meta = {k: doc[k] for k in ("name", "model", "input_len", "source") if k in doc}
    return curves, meta


# ----------------------------------------------------------------------------- pricing
@dataclass
class Option:
    strategy: str
    x: float  # samples (N) or tokens (T)
    x_kind: str
    accuracy: float
    samples: int
    tokens_per_sample: float
    latency_s: float
    cost_usd: float | None
    eflops: float = 0.0
    flops: float = 0.0
    within_budget: bool = True
    measured: bool = True
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "x": self.x, "x_kind": self.x_kind, "accuracy": self.accuracy,
                "samples": self.samples, "tokens_per_sample": self.tokens_per_sample, "latency_s": self.latency_s,
                "cost_usd": self.cost_usd, "kinetics_eflops": self.eflops, "flops_2P": self.flops,
                "within_budget": self.within_budget, "measured_point": self.measured, "notes": self.notes}


def _serve(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, batch: int, input_len: int,
           output_len: int, price: float | None) -> InferenceEstimate:
    return estimate_inference(model, cluster, cfg, batch=batch, input_len=input_len, output_len=max(output_len, 1),
                              price_per_hour=price)


def price_option(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, curve: Curve, x: float,
                 input_len: int, *, price: float | None = None, intensity: float = kinetics.PAPER_INTENSITY,
                 ) -> Option:
    """Latency and cost (serving estimator) and eFLOPs (Kinetics) of one option, for one problem."""
    if curve.x == "tokens":
        samples = 1 if curve.strategy == "long_reasoning" else max(int(round(x / (curve.tokens_per_sample or x))), 1)
        tps = x / samples
    else:
        samples, tps = max(int(round(x)), 1), float(curve.tokens_per_sample or 0.0)
    out = int(round(tps))
    est = _serve(model, cluster, cfg, samples, input_len, out, price)
    # one replica serves the problem; the price is for that replica's accelerators for the latency
    latency = est.e2e_s
    usd_s = est.price_per_hour * est.accelerators_per_replica / 3600.0
    notes = []
    if curve.strategy == "parallel_reasoning" and curve.summary_tokens > 0:
        summ = _serve(model, cluster, cfg, 1, input_len + samples * out, int(curve.summary_tokens), price)
        latency += summ.e2e_s
        notes.append(f"summary pass of {curve.summary_tokens:g} tokens over {samples} paths")
    cost = usd_s * latency if est.price_per_hour > 0 else None
    sh = kinetics.model_shape(model)
    c, m = kinetics.dense_cost(sh, input_len, out, samples, intensity)
    return Option(strategy=curve.strategy, x=float(x), x_kind=curve.x, accuracy=curve.accuracy(x), samples=samples,
                  tokens_per_sample=tps, latency_s=latency, cost_usd=cost, eflops=float(c + m),
                  flops=float(kinetics.flops_only_cost(sh, out, samples)), notes=notes)


def saturation(curve: Curve, epsilon: float = 0.01) -> dict[str, Any]:
    """TTSPM saturation: fitted ``p`` and ``N*`` (sample curves), and the empirical point: the first measured
    x after which accuracy gains less than ``epsilon`` per doubling of x."""
    out: dict[str, Any] = {"epsilon": epsilon}
    xs, ac = curve.xs, curve.accs
    emp = None
    for i in range(len(xs) - 1):
        gain_per_doubling = (ac[i + 1] - ac[i]) / max(math.log2(xs[i + 1] / xs[i]), 1e-9)
        if gain_per_doubling < epsilon:
            emp = float(xs[i])
            break
    out["empirical_x"] = emp
    if curve.x == "samples" and len(xs) >= 2:
        p = ttspm.fit_p(xs, ac)
        out["ttspm_p"] = p
        out["ttspm_n_star"] = ttspm.saturation_point(p, epsilon) if p > 0 else None
    return out


@dataclass
class Plan:
    options: list[Option]
    best: Option | None
    saturation: dict[str, dict[str, Any]]
    budget: dict[str, float | None]
    assumptions: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"best": self.best.to_json() if self.best else None, "budget": self.budget,
                "saturation": self.saturation, "options": [o.to_json() for o in self.options],
                "assumptions": self.assumptions}


def candidate_xs(curve: Curve, max_x: float | None = None) -> list[float]:
    """The measured x values plus powers of two in between (interpolated accuracy)."""
    xs = set(float(x) for x in curve.xs)
    lo, hi = float(curve.xs[0]), float(curve.xs[-1])
    v = 2.0 ** math.ceil(math.log2(lo))
    while v < hi:
        xs.add(v)
        v *= 2.0
    out = sorted(x for x in xs if max_x is None or x <= max_x)
    return out


def plan_testtime(model: ModelSpec, cluster: ClusterSpec, cfg: InferenceConfig, curves: list[Curve], *,
                  input_len: int, latency_budget_s: float | None = None, cost_budget_usd: float | None = None,
                  price: float | None = None, epsilon: float = 0.01) -> Plan:
    """Price every option of every curve and pick the most accurate within the budget (the cheapest on ties)."""
    if not curves:
        raise ParaplanError("no accuracy curve given")
    opts: list[Option] = []
    for cv in curves:
        measured = set(float(x) for x in cv.xs)
        for x in candidate_xs(cv):
            o = price_option(model, cluster, cfg, cv, x, input_len, price=price)
            o.measured = x in measured
            ok = True
            if latency_budget_s is not None and o.latency_s > latency_budget_s:
                ok = False
            if cost_budget_usd is not None and (o.cost_usd is None or o.cost_usd > cost_budget_usd):
                ok = False
            o.within_budget = ok
            opts.append(o)
    feasible = [o for o in opts if o.within_budget]
    best = max(feasible, key=lambda o: (round(o.accuracy, 6), -(o.cost_usd or 0.0), -o.latency_s)) \
        if feasible else None
    sat = {cv.strategy: saturation(cv, epsilon) for cv in curves}
    assumptions = [
        "accuracy: the user's curve, linear in log x between measured points, flat beyond the last",
        "latency/cost: estimate_inference of one replica serving the N samples of one problem as a static batch "
        "(prefill + decode), at the accelerator's price",
        f"eFLOPs: Kinetics cost model (C_comp + I C_mem, I = {kinetics.PAPER_INTENSITY:g})",
    ]
    return Plan(options=opts, best=best, saturation=sat,
                budget={"latency_s": latency_budget_s, "cost_usd": cost_budget_usd}, assumptions=assumptions)
