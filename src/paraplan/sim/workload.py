"""Request streams for the serving simulator: arrival processes, length distributions, trace files.

Arrivals: ``poisson`` (exponential gaps at ``rate`` requests/s), ``gamma`` (gamma gaps with coefficient of
variation ``cv``: burstier than Poisson for cv > 1), a trace CSV (its own arrival times, optionally rescaled to
``rate``), or an infinite rate (everything at t = 0, the offline/maximum-load case).

Lengths: ``fixed:N`` (or just ``N``), ``uniform:LO:HI``, ``normal:MEAN:STD``, ``lognormal:MEAN:STD`` (mean and
standard deviation of the lengths themselves), ``exp:MEAN``, or a named preset for chat-like traffic whose
input and output distributions are lognormals with the published means of the public traces:

====================  ============  ============  =======================================================
preset                input mean    output mean   source
====================  ============  ============  =======================================================
``sharegpt``/``chat`` 246 (sd 547)  322 (sd 244)  NanoFlow (Zhu et al. 2024) dataset table; sd approximate
``lmsys``             102 (sd 169)  222 (sd 210)  idem (LMSYS-Chat-1M); outputs capped at 1024
``splitwise``         1155 (sd 1109) 211 (sd 163) idem (Azure conversation trace used by Splitwise)
====================  ============  ============  =======================================================
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ParaplanError


class WorkloadError(ParaplanError, ValueError):
    """A bad arrival/length specification or trace file; the message names the value (and row)."""


#: (input mean, input sd, output mean, output sd, output cap)
PRESETS: dict[str, tuple[float, float, float, float, int]] = {
    "sharegpt": (246.0, 547.0, 322.0, 244.0, 2048),
    "chat": (246.0, 547.0, 322.0, 244.0, 2048),
    "lmsys": (102.0, 169.0, 222.0, 210.0, 1024),
    "splitwise": (1155.0, 1109.0, 211.0, 163.0, 2048),
}


@dataclass(frozen=True)
class Requests:
    """A request stream: arrival times (s, sorted), prompt and output lengths (tokens)."""

    arrival: np.ndarray
    input_len: np.ndarray
    output_len: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return int(self.arrival.size)


def _positive(value: str, what: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise WorkloadError(f"{what}: '{value}' is not a number") from None
    if not math.isfinite(x) or x <= 0:
        raise WorkloadError(f"{what}: '{value}' must be a positive number")
    return x


def sample_lengths(spec: str, n: int, rng: np.random.Generator, *, role: str = "input",
                   max_len: int | None = None) -> np.ndarray:
    """``n`` integer lengths >= 1 from a distribution spec (see the module docstring)."""
    text = str(spec).strip().lower()
    if not text:
        raise WorkloadError(f"empty {role} length distribution")
    parts = text.split(":")
    kind = parts[0]
    what = f"{role} length distribution '{spec}'"
    if re.fullmatch(r"[0-9.e+]+", kind):
        parts, kind = ["fixed", kind], "fixed"
    if kind in PRESETS:
        mi, si, mo, so, cap = PRESETS[kind]
        mean, sd = (mi, si) if role == "input" else (mo, so)
        x = _lognormal(rng, mean, sd, n)
        if role != "input":
            x = np.minimum(x, cap)
    elif kind == "fixed" and len(parts) == 2:
        x = np.full(n, _positive(parts[1], what))
    elif kind == "uniform" and len(parts) == 3:
        lo, hi = _positive(parts[1], what), _positive(parts[2], what)
        if hi < lo:
            raise WorkloadError(f"{what}: upper bound {hi:g} below lower bound {lo:g}")
        x = rng.uniform(lo, hi + 1.0, n)
    elif kind == "normal" and len(parts) == 3:
        x = rng.normal(_positive(parts[1], what), _positive(parts[2], what), n)
    elif kind == "lognormal" and len(parts) == 3:
        x = _lognormal(rng, _positive(parts[1], what), _positive(parts[2], what), n)
    elif kind in ("exp", "exponential") and len(parts) == 2:
        x = rng.exponential(_positive(parts[1], what), n)
    else:
        raise WorkloadError(f"unknown {what}; use fixed:N, uniform:LO:HI, normal:MEAN:SD, lognormal:MEAN:SD, "
                            f"exp:MEAN or one of {', '.join(sorted(PRESETS))}")
    out = np.maximum(np.floor(x), 1.0)
    if max_len is not None:
        out = np.minimum(out, max_len)
    return out.astype(np.int64)


def _lognormal(rng: np.random.Generator, mean: float, sd: float, n: int) -> np.ndarray:
    s2 = math.log(1.0 + (sd / mean) ** 2)
    return rng.lognormal(math.log(mean) - s2 / 2.0, math.sqrt(s2), n)


def arrival_times(kind: str, rate: float, n: int, rng: np.random.Generator, *, cv: float = 2.0) -> np.ndarray:
    """``n`` sorted arrival times: ``poisson`` or ``gamma`` (coefficient of variation ``cv``) at ``rate`` req/s;
    an infinite rate puts every request at t = 0."""
    if n < 0:
        raise WorkloadError(f"number of requests must be >= 0, got {n}")
    if math.isinf(rate):
        return np.zeros(n)
    if not (rate > 0 and math.isfinite(rate)):
        raise WorkloadError(f"rate must be a positive number of requests per second (or inf), got {rate}")
    gaps = _gaps(kind, rate, n, rng, cv)
    t = np.cumsum(gaps)
    return t - t[0] if n else t


def _gaps(kind: str, rate: float, n: int, rng: np.random.Generator, cv: float) -> np.ndarray:
    if kind == "poisson":
        return rng.exponential(1.0 / rate, n)
    if kind == "gamma":
        if not cv > 0:
            raise WorkloadError(f"gamma arrivals need a positive coefficient of variation, got {cv}")
        shape = 1.0 / (cv * cv)
        return rng.gamma(shape, 1.0 / (rate * shape), n)
    raise WorkloadError(f"unknown arrival process '{kind}'; use poisson, gamma or a trace .csv file")


_ARRIVAL_COLS = ("arrival_time", "arrival", "timestamp", "time", "t", "arrival_s")
_INPUT_COLS = ("input_len", "input_tokens", "prompt_len", "prompt_tokens", "contexttokens", "input")
_OUTPUT_COLS = ("output_len", "output_tokens", "generated_tokens", "generatedtokens", "completion_tokens", "output")


def read_trace(path: str | Path) -> Requests:
    """Read a trace CSV: an arrival column (seconds; optional: without one, requests arrive together), an input-
    length column and an output-length column (common names accepted, e.g. ``arrival_time,input_len,output_len``
    or Azure's ``TIMESTAMP,ContextTokens,GeneratedTokens`` when TIMESTAMP holds seconds). A bad row is an error
    naming the row and the value; nothing is dropped silently."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(2, "No such file or directory", str(p))
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise WorkloadError(f"trace {p}: empty file or no header")
        cols = {c.strip().lower(): c for c in reader.fieldnames if c}

        def pick(names: tuple[str, ...]) -> str | None:
            return next((cols[n] for n in names if n in cols), None)

        c_in, c_out, c_t = pick(_INPUT_COLS), pick(_OUTPUT_COLS), pick(_ARRIVAL_COLS)
        if c_in is None or c_out is None:
            raise WorkloadError(f"trace {p}: needs an input-length and an output-length column (e.g. input_len, "
                                f"output_len); found {', '.join(reader.fieldnames)}")
        arr: list[float] = []
        ins: list[int] = []
        outs: list[int] = []
        for i, row in enumerate(reader, start=2):
            vals = []
            for col in (c_in, c_out):
                raw = (row.get(col) or "").strip()
                try:
                    v = float(raw)
                except ValueError:
                    raise WorkloadError(f"trace {p} line {i}: {col} '{raw}' is not a number") from None
                if not math.isfinite(v) or v < 1 or v != int(v):
                    raise WorkloadError(f"trace {p} line {i}: {col} '{raw}' must be a whole number of tokens >= 1")
                vals.append(int(v))
            t = 0.0
            if c_t is not None:
                raw = (row.get(c_t) or "").strip()
                try:
                    t = float(raw)
                except ValueError:
                    raise WorkloadError(f"trace {p} line {i}: {c_t} '{raw}' is not a time in seconds") from None
                if not math.isfinite(t) or t < 0:
                    raise WorkloadError(f"trace {p} line {i}: {c_t} '{raw}' must be a time >= 0 s")
            arr.append(t)
            ins.append(vals[0])
            outs.append(vals[1])
    if not ins:
        raise WorkloadError(f"trace {p}: no requests")
    a = np.asarray(arr)
    order = np.argsort(a, kind="stable")
    a = a[order] - a[order][0]
    return Requests(a, np.asarray(ins, dtype=np.int64)[order], np.asarray(outs, dtype=np.int64)[order],
                    source=f"trace {p}")


def make_requests(arrivals: str = "poisson", rate: float | None = 1.0, *, n: int | None = None,
                  duration: float | None = None, input_dist: str = "sharegpt", output_dist: str | None = None,
                  seed: int = 0, cv: float = 2.0, max_input: int | None = None,
                  max_output: int | None = None) -> Requests:
    """A request stream from an arrival process (or a trace CSV) and length distributions.

    Exactly one of ``n`` (number of requests) and ``duration`` (seconds of arrivals) unless ``arrivals`` is a
    trace (then ``n`` caps it and ``rate`` rescales its times when given). ``output_dist`` defaults to the
    input preset's output side (or the input spec)."""
    rng = np.random.default_rng(seed)
    if str(arrivals).lower().endswith(".csv"):
        tr = read_trace(arrivals)
        a, i_len, o_len = tr.arrival, tr.input_len, tr.output_len
        if n is not None:
            a, i_len, o_len = a[:n], i_len[:n], o_len[:n]
        if rate is not None and math.isfinite(rate) and a.size > 1 and a[-1] > 0:
            a = a * ((a.size - 1) / a[-1]) / rate
        elif rate is not None and math.isinf(rate):
            a = np.zeros_like(a)
        if duration is not None:
            keep = a < duration
            a, i_len, o_len = a[keep], i_len[keep], o_len[keep]
        return Requests(a, i_len, o_len, source=tr.source)
    if (n is None) == (duration is None):
        raise WorkloadError("give exactly one of the number of requests and the duration")
    if rate is None:
        raise WorkloadError(f"{arrivals} arrivals need a rate")
    if duration is not None:
        if not duration > 0:
            raise WorkloadError(f"duration must be > 0 s, got {duration}")
        if math.isinf(rate):
            raise WorkloadError("an infinite rate needs a number of requests, not a duration")
        _gaps(arrivals, rate, 1, rng, cv)  # validates the process name
        chunks = [np.zeros(1)]
        last = 0.0
        while last < duration:
            g = _gaps(arrivals, rate, max(int(rate * duration) + 16, 16), rng, cv)
            c = last + np.cumsum(g)
            chunks.append(c)
            last = float(c[-1])
        a = np.concatenate(chunks)
        a = a[a < duration]
    else:
        assert n is not None
        a = arrival_times(arrivals, rate, n, rng, cv=cv)
    m = a.size
    out_spec = output_dist if output_dist is not None else input_dist
    i_len = sample_lengths(input_dist, m, rng, role="input", max_len=max_input)
    o_len = sample_lengths(out_spec, m, rng, role="output", max_len=max_output)
    return Requests(a, i_len, o_len, source=f"{arrivals} at {rate:g} req/s, input {input_dist}, output {out_spec}")
