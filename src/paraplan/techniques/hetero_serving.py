"""Heterogeneous (disaggregated) serving: prefill and decode on different accelerator kinds, priced per token.

Asgar, Nguyen, Katti, "Efficient and Scalable Agentic AI with Heterogeneous Systems", arXiv 2507.19635 (2025):
a TCO model for placing the operators of agent graphs on heterogeneous hardware; its published results are
preliminary (older GPUs combined with newer accelerators can match the TCO of a latest-generation homogeneous
design). A related analysis (Gimlet Labs, summarised by Momento's blog "Prefill and decode want different chips")
puts B200 prefill with Gaudi 3 decode at about 3x (prefill-heavy) to 4x (decode-heavy) better TCO than H100:H100.

Mechanism (all throughputs from :func:`paraplan.infer.estimate_inference`):

* prefill pool: input tokens/s per accelerator at a prefill batch (compute-bound: FLOP/s matter);
* decode pool: output tokens/s per accelerator at the largest batch whose KV cache fits (memory-bandwidth and
  capacity bound);
* cost of a request = ``price_p / 3600 * I / tput_p + price_d / 3600 * O / tput_d`` (USD), with the price per
  accelerator-hour either the catalog's rough rental price or a TCO from :func:`tco_per_hour`
  (capex amortised + power x PUE x electricity);
* the KV cache of each request moves from the prefill to the decode pool: ``I * kv_bytes_per_token / link_bw``
  seconds, reported as a constraint (it adds to TTFT, not to cost).
"""

from __future__ import annotations

from ..catalog import get_accelerator, get_cluster, get_model
from ..claims import ClaimValue
from ..infer import InferenceConfig, estimate_inference, kv_bytes_per_token, max_batch_for
from ..specs import ModelSpec

__all__ = ["tco_per_hour", "prefill_tokens_per_s", "decode_tokens_per_s", "request_cost", "disaggregated_cost",
           "tco_ratio"]


def tco_per_hour(capex_usd: float, years: float = 4.0, power_w: float = 0.0, pue: float = 1.3,
                 usd_per_kwh: float = 0.08) -> float:
    """USD per accelerator-hour: straight-line capex over ``years`` plus power x PUE x electricity."""
    return capex_usd / (years * 8760.0) + power_w / 1000.0 * pue * usd_per_kwh


def _cfg(model: ModelSpec, tp: int, precision_bits: float) -> InferenceConfig:
    act = 8 if precision_bits <= 8 else 16
    return InferenceConfig(tp=tp, weight_bits=precision_bits, act_bits=act, kv_bits=precision_bits)


def prefill_tokens_per_s(model: ModelSpec, accelerator: str, input_len: int, *, tp: int = 1, batch: int = 8,
                         precision_bits: float = 16.0) -> float:
    """Input tokens per second per accelerator of a prefill replica (one batch of ``batch`` prompts)."""
    c = get_cluster(f"{accelerator}:{tp}")
    est = estimate_inference(model, c, _cfg(model, tp, precision_bits), batch=batch, input_len=input_len,
                             output_len=1, strict=False)
    return batch * input_len / est.ttft_s / tp


def decode_tokens_per_s(model: ModelSpec, accelerator: str, input_len: int, output_len: int, *, tp: int = 1,
                        max_batch: int = 256, precision_bits: float = 16.0) -> tuple[float, int]:
    """Output tokens per second per accelerator of a decode replica at the largest batch that fits (capped at
    ``max_batch``); returns (tokens/s, batch)."""
    c = get_cluster(f"{accelerator}:{tp}")
    cfg = _cfg(model, tp, precision_bits)
    b = int(min(max_batch, max(int(max_batch_for(model, c, cfg, input_len + output_len, max_seqs=max_batch)), 1)))
    est = estimate_inference(model, c, cfg, batch=b, input_len=input_len, output_len=output_len, strict=False)
    return b / est.tpot_s / tp, b


def request_cost(price_prefill: float, price_decode: float, input_len: int, output_len: int, prefill_tps: float,
                 decode_tps: float) -> float:
    """USD per request with prices per accelerator-hour and per-accelerator throughputs."""
    return price_prefill / 3600.0 * input_len / prefill_tps + price_decode / 3600.0 * output_len / decode_tps


def disaggregated_cost(model: str, prefill: str, decode: str, input_len: int, output_len: int, *,
                       tp_prefill: int = 1, tp_decode: int = 1, price_prefill: float | None = None,
                       price_decode: float | None = None, precision_bits: float = 16.0,
                       kv_link_gbs: float = 50.0) -> dict[str, float]:
    """Cost per request and per million output tokens of prefill on ``prefill`` and decode on ``decode``."""
    m = get_model(model)
    pa, da = get_accelerator(prefill), get_accelerator(decode)
    pp = pa.price_per_hour if price_prefill is None else price_prefill
    dp = da.price_per_hour if price_decode is None else price_decode
    ptps = prefill_tokens_per_s(m, prefill, input_len, tp=tp_prefill, precision_bits=precision_bits)
    dtps, b = decode_tokens_per_s(m, decode, input_len, output_len, tp=tp_decode, precision_bits=precision_bits)
    cost = request_cost(pp, dp, input_len, output_len, ptps, dtps)
    kv_s = input_len * kv_bytes_per_token(m, _cfg(m, 1, precision_bits)) / (kv_link_gbs * 1e9)
    return {"usd_per_request": cost, "usd_per_million_output": cost / output_len * 1e6, "prefill_tps": ptps,
            "decode_tps": dtps, "decode_batch": float(b), "kv_transfer_s": kv_s, "price_prefill": pp,
            "price_decode": dp}


def tco_ratio(model: str, input_len: int, output_len: int, base_prefill: str, base_decode: str, prefill: str,
              decode: str, tp_base: int = 1, tp_prefill: int = 1, tp_decode: int = 1,
              prices: dict[str, float] | None = None, precision_bits: float = 16.0) -> ClaimValue:
    """Cost per request of the baseline pair over the heterogeneous pair (> 1: heterogeneous is cheaper).
    ``prices``: USD per accelerator-hour by catalog name (default: the catalog's rough prices)."""
    pr = prices or {}
    base = disaggregated_cost(model, base_prefill, base_decode, input_len, output_len, tp_prefill=tp_base,
                              tp_decode=tp_base, price_prefill=pr.get(base_prefill), price_decode=pr.get(base_decode),
                              precision_bits=precision_bits)
    het = disaggregated_cost(model, prefill, decode, input_len, output_len, tp_prefill=tp_prefill,
                             tp_decode=tp_decode, price_prefill=pr.get(prefill), price_decode=pr.get(decode),
                             precision_bits=precision_bits)
    return ClaimValue(base["usd_per_request"] / het["usd_per_request"], {"baseline": base, "heterogeneous": het})
