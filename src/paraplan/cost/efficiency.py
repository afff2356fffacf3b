"""Achieved-efficiency models: GEMM, attention, streaming memory ops and collectives (array-first).

Two layers:

* ``"spec"``: fixed, documented textbook constants, not fitted: GEMM 0.80 of dense peak with no size
  dependence and no fixed cost (memory roofline at 0.80 of DRAM bandwidth), attention 0.60 of peak
  (decode: 0.80 of DRAM bandwidth), streaming memory 0.80, collectives 0.80 of link bandwidth with
  10 us latency.
* ``"curves"``: parameters fitted per accelerator *family* from public per-kernel timings by
  ``scripts/fit_efficiency.py`` into ``paraplan/catalog/curves/efficiency.yaml`` (forms, values and fit
  errors: ``docs/efficiency.md``). A family without a fit uses the yaml's ``default`` entry.

Forms (seconds; ``peak`` = ``acc.peak(dtype)``, ``bw`` = ``acc.memory_bw``):

* GEMM ``[m,k] x [k,n]``: ``t = t0 + max(2mnk / (peak eff_c), (mk + nk + mn) b / (bw eff_mem))`` with
  ``eff_c = eff_max s(m) s(n) s(k)``, ``s(x) = x / (x + x_half)``.
* Attention prefill: ``t = t0 + max(F / (peak eff_max q/(q + L_half)), kv_bytes / (bw eff_kv))``,
  ``F = 4 b h d (q kv - q^2/2)`` causal (``4 b h d q kv`` otherwise); decode (``q_len == 1``):
  ``t = t0 + kv_bytes / (bw eff_kv)`` with ``kv_bytes = 2 b kv kv_heads d b_kv``.
* Streaming memory ops: ``t = t0 + nbytes / (bw eff)``.
* Collectives: ``(alpha, eff)`` for ``t = alpha + bus_bytes / (eff link_bw)`` (the caller owns bus bytes
  and the link bandwidth).

All functions broadcast numpy-style over array arguments (scalars or arrays of matching shapes) and
never loop over elements. Zero-sized work takes zero time.

Calibrated families: :func:`register_family` adds a family measured on the user's own hardware
(``paraplan calibrate``, :mod:`paraplan.calibrate.profile`) in the same forms and keys as a family of
``efficiency.yaml``; an accelerator whose ``family`` names it is priced with those curves, and sections the
calibration did not measure fall back to its ``base`` family, then to ``default``. :func:`curves_provenance`
says which of them priced an accelerator.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, Literal

import numpy as np

from .. import _yaml
from ..specs import AcceleratorSpec

Layer = Literal["spec", "curves"]
LAYERS: tuple[str, ...] = ("spec", "curves")
Tier = Literal["scaleup", "scaleout"]
ArrayLike = np.ndarray | float | int

# ------------------------------------------------------------------------ spec layer (not fitted)
SPEC_GEMM_EFF = 0.80
SPEC_MEMORY_EFF = 0.80
SPEC_ATTENTION_EFF = 0.60
SPEC_COLLECTIVE_EFF = 0.80
SPEC_ALPHA_S = 10e-6

COLLECTIVE_OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv")

#: bytes per element by dtype name
BYTES_PER_ELEMENT: dict[str, float] = {
    "fp64": 8.0, "fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp8_block": 1.0,
    "int8": 1.0, "fp6": 0.75, "fp4": 0.5, "int4": 0.5,
}
#: GEMM curve keys to try, in order, for a dtype (fp16 uses the bf16 curves; low precisions fall back to
#: the bf16 curve *shape*, still normalised by their own peak)
_GEMM_CHAIN: dict[str, tuple[str, ...]] = {
    "bf16": ("bf16",), "fp16": ("bf16",), "fp32": ("fp32", "bf16"), "tf32": ("bf16",), "fp64": ("bf16",),
    "fp8": ("fp8", "bf16"), "fp8_block": ("fp8_block", "fp8", "bf16"), "int8": ("fp8", "bf16"),
    "fp6": ("fp8", "bf16"), "fp4": ("fp4", "fp8", "bf16"), "int4": ("fp4", "fp8", "bf16"),
}
_ATTN_CHAIN: dict[str, tuple[str, ...]] = {"fp8": ("fp8", "bf16"), "fp4": ("fp8", "bf16")}


def _check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise ValueError(f"layer must be 'spec' or 'curves', not {layer!r}")


# ------------------------------------------------------------------------ curve loading
@cache
def load_curves() -> dict[str, Any]:
    """The fitted curves document (``paraplan/catalog/curves/efficiency.yaml``), loaded once."""
    path = resources.files("paraplan.catalog").joinpath("curves", "efficiency.yaml")
    text = path.read_text(encoding="utf-8")
    doc = _yaml.load_text(text)  # libyaml + the per-user parsed-document cache
    if not isinstance(doc, dict) or "default" not in doc.get("families", {}):
        raise ValueError("efficiency.yaml: missing 'families.default'")
    return doc


#: calibrated families registered at run time: name -> {"curves": family document, "source": str, "base": str}
_REGISTERED: dict[str, dict[str, Any]] = {}


def _families() -> dict[str, Any]:
    fams = load_curves()["families"]
    if not _REGISTERED:
        return fams
    return {**fams, **{name: reg["curves"] for name, reg in _REGISTERED.items()}}


def _chain(family: str) -> tuple[str, ...]:
    """Families to look a curve up in: the family, its calibration base (if any), then ``default``."""
    reg = _REGISTERED.get(family)
    base = reg.get("base") if reg else None
    return tuple(dict.fromkeys(f for f in (family, base, "default") if f))


def _clear_caches() -> None:
    for fn in (_gemm_params, _quantize_bytes, _prefill_params, _decode_params, _memory_params, _collective):
        fn.cache_clear()


def register_family(name: str, curves: dict[str, Any], *, source: str, base: str | None = None) -> None:
    """Price accelerators of family ``name`` with ``curves`` (a family document in the form of
    ``efficiency.yaml``: ``gemm``, ``attention``, ``memory``, ``collectives``; any subset). Sections it does not
    hold come from ``base`` (a catalog family), then ``default``. ``source`` names where the curves came from
    (shown by :func:`curves_provenance`). Registering the same name again replaces it; a catalog family name
    cannot be replaced."""
    if name in load_curves()["families"]:
        raise ValueError(f"family {name!r} is a catalog family; a calibrated family needs its own name")
    if not isinstance(curves, dict):
        raise ValueError(f"curves of family {name!r} must be a mapping of sections, not {type(curves).__name__}")
    unknown = set(curves) - {"gemm", "attention", "memory", "collectives", "status", "systems", "checks"}
    if unknown:
        raise ValueError(f"curves of family {name!r}: unknown section(s) {sorted(unknown)}")
    if base is not None and base not in load_curves()["families"]:
        base = None  # a base family without catalog curves (e.g. 'cpu') adds nothing beyond 'default'
    _REGISTERED[name] = {"curves": curves, "source": source, "base": base}
    _clear_caches()


def unregister_family(name: str) -> None:
    """Forget a family added by :func:`register_family` (no error if it is not registered)."""
    if _REGISTERED.pop(name, None) is not None:
        _clear_caches()


def registered_family(name: str) -> dict[str, Any] | None:
    """``{"curves", "source", "base"}`` of a calibrated family, or None."""
    return _REGISTERED.get(name)


def curves_provenance(acc: AcceleratorSpec, layer: Layer = "curves") -> str:
    """Which efficiency layer prices ``acc``: the textbook constants, the catalog's fitted curves (of its family
    or the ``default`` entry), or curves calibrated on the user's hardware."""
    _check_layer(layer)
    if layer == "spec":
        return "fixed textbook efficiencies (spec layer)"
    reg = _REGISTERED.get(acc.family)
    if reg is not None:
        fallback = reg["base"] or "default"
        return f"calibrated kernel curves ({reg['source']}; unmeasured sections from catalog family '{fallback}')"
    if acc.family in load_curves()["families"]:
        return f"fitted kernel efficiency curves (catalog/curves, family '{acc.family}')"
    return f"fitted kernel efficiency curves (catalog/curves 'default': no fit for family '{acc.family}')"


def _lookup(family: str, path: tuple[str, ...], keys: tuple[str, ...]) -> dict[str, Any]:
    """First of ``keys`` under ``path`` in the family (then its calibration base), then in ``default``."""
    fams = _families()
    for fam in _chain(family):
        node: Any = fams.get(fam)
        for p in path:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            for k in keys:
                if isinstance(node.get(k), dict):
                    return node[k]
    raise KeyError(f"no efficiency curve {'/'.join(path)} {keys} for family {family!r} or default")


@cache
def _gemm_params(family: str, dtype: str) -> tuple[float, float, float, float, float, float]:
    c = _lookup(family, ("gemm",), _GEMM_CHAIN.get(dtype, ("bf16",)))
    return (float(c["eff_max"]), float(c["m_half"]), float(c["n_half"]), float(c["k_half"]),
            float(c["eff_mem"]), float(c["t0_us"]) * 1e-6)


@cache
def _quantize_bytes(family: str, dtype: str) -> float:
    """Bytes per activation element of the module's quantize pass, fitted apart from the GEMM (per-tensor
    fp8: read 16-bit, write 8-bit); 0 where the curve is module-level as a whole."""
    c = _lookup(family, ("gemm",), _GEMM_CHAIN.get(dtype, ("bf16",)))
    return float(c.get("quantize_bytes", 0.0))


@cache
def _prefill_params(family: str, dtype: str) -> tuple[float, float, float]:
    c = _lookup(family, ("attention", "prefill"), _ATTN_CHAIN.get(dtype, ("bf16",)))
    return float(c["eff_max"]), float(c["l_half"]), float(c["t0_us"]) * 1e-6


@cache
def _decode_params(family: str, dtype: str) -> tuple[float, float]:
    c = _lookup(family, ("attention", "decode"), _ATTN_CHAIN.get(dtype, ("bf16",)))
    return float(c["eff_kv"]), float(c["t0_us"]) * 1e-6


#: ``memory_time(op="stream")``: a read-once/write-once kernel with trivial per-element work (softmax rows
#: held in registers, dropout, copies) runs at the fitted efficiency of the streaming ``add`` op where the
#: family has one; the default (``op=None``) is the aggregate fitted over all layer ops.
MEMORY_OPS = ("stream",)


@cache
def _memory_params(family: str, op: str | None = None) -> tuple[float, float]:
    fams = _families()
    c = next((fams[f]["memory"] for f in _chain(family) if isinstance((fams.get(f) or {}).get("memory"), dict)),
             fams["default"]["memory"])
    eff = float(c["eff"])
    if op == "stream":
        eff = float((c.get("eff_by_op") or {}).get("add", eff))
    elif op is not None:
        raise ValueError(f"unknown memory op {op!r}; expected one of {MEMORY_OPS}")
    return min(eff, 1.0), float(c["t0_us"]) * 1e-6


@cache
def _collective(family: str, op: str, tier: str) -> tuple[float, float]:
    if op not in COLLECTIVE_OPS:
        raise ValueError(f"unknown collective {op!r}; expected one of {COLLECTIVE_OPS}")
    if tier == "scaleup":
        c = _lookup(family, ("collectives", "scaleup"), (op,))
    elif tier == "scaleout":
        fams = _families()
        c = None
        for f in _chain(family):  # the family, then its calibration base; others use the shared table
            if f == "default" and family != "default":
                break
            c = ((fams.get(f) or {}).get("collectives") or {}).get("scaleout", {}).get(op)
            if isinstance(c, dict):
                break
        if not isinstance(c, dict):
            table = load_curves().get("scaleout") or {}
            c = table.get(op) if isinstance(table.get(op), dict) else table.get("default")
        if not isinstance(c, dict):
            raise KeyError("efficiency.yaml: no scale-out collective parameters")
    else:
        raise ValueError(f"tier must be 'scaleup' or 'scaleout', not {tier!r}")
    return float(c["alpha_us"]) * 1e-6, float(c["eff"])


# ------------------------------------------------------------------------ helpers
def _bpe(dtype: str) -> float:
    try:
        return BYTES_PER_ELEMENT[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(BYTES_PER_ELEMENT)}") from None


def _peak(acc: AcceleratorSpec, dtype: str) -> float:
    """Dense peak FLOP/s for ``dtype`` (``fp8_block`` runs on the fp8 units; fp6 falls back to fp8)."""
    if dtype == "fp8_block":
        dtype = "fp8"
    if dtype == "fp6" and "fp6" not in acc.peak_flops:
        dtype = "fp8"
    return acc.peak(dtype)


def _f(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


# ------------------------------------------------------------------------ public API
def gemm_time(acc: AcceleratorSpec, dtype: str, m: ArrayLike, n: ArrayLike, k: ArrayLike, *,
              layer: Layer = "curves", quantize: bool = True) -> np.ndarray:
    """Seconds for ``Y[m,n] = X[m,k] W[n,k]^T`` in ``dtype`` on one ``acc`` (broadcasts over m, n, k).

    ``quantize``: include the pass that quantizes ``X`` where the curve prices it apart (per-tensor fp8, as
    the inference modules of the kernel data run it); training, which prices its casts itself, passes False."""
    _check_layer(layer)
    m, n, k = _f(m), _f(n), _f(k)
    peak, bw, bpe = _peak(acc, dtype), acc.memory_bw, _bpe(dtype)
    flops = 2.0 * m * n * k
    nbytes = (m * k + n * k + m * n) * bpe
    if layer == "spec":
        t = np.maximum(flops / (peak * SPEC_GEMM_EFF), nbytes / (bw * SPEC_MEMORY_EFF))
    else:
        eff_max, mh, nh, kh, eff_mem, t0 = _gemm_params(acc.family, dtype)
        # 2mnk / (peak eff_max s(m) s(n) s(k)) simplifies to 2 (m + mh)(n + nh)(k + kh) / (peak eff_max)
        t_compute = (m + mh) * (n + nh) * (k + kh) * (2.0 / (peak * eff_max))
        t = t0 + np.maximum(t_compute, nbytes * (1.0 / (bw * eff_mem)))
        qb = _quantize_bytes(acc.family, dtype) if quantize else 0.0
        if qb:
            t = t + m * k * (qb / (bw * eff_mem))
    return np.where(flops > 0.0, t, 0.0)


def gemm_efficiency(acc: AcceleratorSpec, dtype: str, m: ArrayLike, n: ArrayLike, k: ArrayLike, *,
                    layer: Layer = "curves") -> np.ndarray:
    """Achieved fraction of dense peak, ``2mnk / (gemm_time * peak)``; 0 for empty GEMMs."""
    t = gemm_time(acc, dtype, m, n, k, layer=layer)
    flops = 2.0 * _f(m) * _f(n) * _f(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t > 0.0, flops / (np.where(t > 0.0, t, 1.0) * _peak(acc, dtype)), 0.0)


def attention_time(acc: AcceleratorSpec, dtype: str, batch: ArrayLike, heads: ArrayLike, q_len: ArrayLike,
                   kv_len: ArrayLike, head_dim: ArrayLike, kv_heads: ArrayLike, *, causal: bool = True,
                   layer: Layer = "curves") -> np.ndarray:
    """Seconds for the attention core (scores, softmax, weighted values) of one layer on one ``acc``.

    ``heads``/``kv_heads`` are those handled by this accelerator; ``kv_len`` is the total context
    attended (cached tokens plus the ``q_len`` new ones; values below ``q_len`` are raised to it).
    ``q_len == 1`` is decode (memory-bound on the KV cache, read in ``dtype``: fp8 -> 1 byte);
    otherwise prefill / training forward (flash attention; causal halves the new-token block).
    """
    _check_layer(layer)
    b, h, q, kv, d, kvh = (_f(x) for x in (batch, heads, q_len, kv_len, head_dim, kv_heads))
    kv = np.maximum(kv, q)
    bpe = _bpe(dtype)
    peak, bw = _peak(acc, dtype), acc.memory_bw
    pairs = q * kv - 0.5 * q * q if causal else q * kv
    flops = 4.0 * b * h * d * pairs
    kv_bytes = 2.0 * b * kv * kvh * d * bpe
    io_bytes = kv_bytes + 2.0 * b * q * h * d * bpe  # + read Q, write O
    if layer == "spec":
        pre = np.maximum(flops / (peak * SPEC_ATTENTION_EFF), io_bytes / (bw * SPEC_MEMORY_EFF))
        dec = kv_bytes / (bw * SPEC_MEMORY_EFF)
    else:
        eff_max, l_half, t0 = _prefill_params(acc.family, dtype)
        eff_kv, t0_dec = _decode_params(acc.family, dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            pre = t0 + np.maximum(flops / (peak * eff_max * q / (q + l_half)), io_bytes / (bw * eff_kv))
        dec = t0_dec + kv_bytes / (bw * eff_kv)
    t = np.where(q <= 1.0, dec, pre)
    return np.where((flops > 0.0) & (q > 0.0), t, 0.0)


def memory_time(acc: AcceleratorSpec, nbytes: ArrayLike, *, layer: Layer = "curves",
                op: str | None = None) -> np.ndarray:
    """Seconds for a streaming elementwise / norm op that moves ``nbytes`` (reads plus writes) of DRAM;
    ``op="stream"`` for pure streaming kernels (see :data:`MEMORY_OPS`)."""
    _check_layer(layer)
    nb = _f(nbytes)
    if layer == "spec":
        t = nb / (acc.memory_bw * SPEC_MEMORY_EFF)
    else:
        eff, t0 = _memory_params(acc.family, op)
        t = t0 + nb / (acc.memory_bw * eff)
    return np.where(nb > 0.0, t, 0.0)


def collective_params(acc: AcceleratorSpec, op: str, tier: Tier, *,
                      layer: Layer = "curves") -> tuple[float, float]:
    """``(alpha_s, bw_efficiency)`` of collective ``op`` over the ``tier`` network.

    ``alpha_s`` is the fixed latency per collective call; ``bw_efficiency`` the achieved fraction of the
    tier's per-direction link bandwidth on bus bytes (nccl-tests convention). Scale-up values are fitted
    per family (relative to NVLink, or PCIe for parts without it); scale-out values are shared by all
    families (Vidur 2-node runs against an assumed NIC bandwidth).
    """
    _check_layer(layer)
    if op not in COLLECTIVE_OPS:
        raise ValueError(f"unknown collective {op!r}; expected one of {COLLECTIVE_OPS}")
    if tier not in ("scaleup", "scaleout"):
        raise ValueError(f"tier must be 'scaleup' or 'scaleout', not {tier!r}")
    if layer == "spec":
        return SPEC_ALPHA_S, SPEC_COLLECTIVE_EFF
    return _collective(acc.family, op, tier)
