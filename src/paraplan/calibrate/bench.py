"""Microbenchmarks on the local device (PyTorch). Each returns raw points (shapes, bytes, seconds) that
:mod:`paraplan.calibrate.fit` turns into curves; each takes a few seconds (``quick``: fewer points).

* GEMM: ``Y = X W^T`` and the two backward layouts, over log-spaced (m, n, k), per dtype;
* memory: the STREAM kernels (copy, scale, add, triad) on arrays of 4x the last-level cache (the standard
  bandwidth reference) and the streaming ops of a transformer layer (LayerNorm, GELU, residual add) in the
  training dtype over the sizes a layer moves;
* attention: PyTorch's fused ``scaled_dot_product_attention`` (causal) over sequence length, head dim and
  batch x heads, forward and forward+backward, and single-token decode over a KV cache;
* collectives: all-reduce, all-gather, reduce-scatter, all-to-all and send/recv between ``ranks`` local processes
  (gloo on CPU, NCCL on CUDA) by message size (see :mod:`paraplan.calibrate.dist`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .device import require_torch, sync, time_call, torch_dtype

Progress = Callable[[int, int], None]


def _noop(done: int, total: int) -> None:
    return None


def _budget(device: str, quick: bool) -> dict[str, float]:
    """Timing effort per point: minimum batch length (s) and repeats."""
    if quick:
        return {"min_time": 0.004, "repeats": 3}
    return {"min_time": 0.01 if device == "cpu" else 0.005, "repeats": 3}


# ------------------------------------------------------------------ GEMM
def gemm_shapes(device: str, quick: bool, seed: int = 0) -> list[tuple[int, int, int, str]]:
    """Log-spaced (m, n, k, layout) with a FLOP cap per call, sampled reproducibly."""
    if device == "cpu":
        values = [32, 64, 128, 256, 512, 1024, 2048, 4096]
        cap, n_pts = (2.0**31, 20) if quick else (2.0**32, 56)
    else:  # a GPU needs large shapes to leave the launch-bound regime
        values = [256, 1024, 4096, 8192, 16384]
        cap, n_pts = (2.0**41, 20) if quick else (2.0**41, 48)
    combos = [(m, n, k) for m in values for n in values for k in values if 2.0 * m * n * k <= cap]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(combos), size=min(n_pts, len(combos)), replace=False)
    layouts = ("nt", "nn", "tn")  # forward X W^T, backward dX = dY W, backward dW = dY^T X
    shapes = [(*combos[i], layouts[j % 3]) for j, i in enumerate(sorted(pick))]
    # decode-shaped GEMMs (a few tokens against a whole weight matrix: memory-bound), forward layout
    wide = [1024, 4096] if device == "cpu" else [4096, 16384]
    small_m = [1, 8] if quick else [1, 4, 16]
    nk = [(wide[0], wide[1]), (wide[1], wide[0])] if quick else [(n, k) for n in wide for k in wide]
    return shapes + [(m, n, k, "nt") for m in small_m for n, k in nk]


def _copies(pair_bytes: float, llc: int, cap: int = 8) -> int:
    """Operand sets to cycle through so that consecutive calls find their operands out of the last-level cache
    (as a model's weights are in a real step: the other layers' weights evict them)."""
    return int(min(max(-(-2 * llc // max(int(pair_bytes), 1)), 1), cap))


def bench_gemm(device: str, dtype: str, quick: bool = False, progress: Progress = _noop) -> list[dict[str, Any]]:
    """Seconds per GEMM over :func:`gemm_shapes`, operands rotated through copies larger than the last-level
    cache."""
    torch = require_torch()
    dt = torch_dtype(dtype)
    bpe = torch.tensor([], dtype=dt).element_size()
    llc = last_level_cache_bytes(device)
    shapes = gemm_shapes(device, quick)
    out = []
    budget = _budget(device, quick)
    for i, (m, n, k, lay) in enumerate(shapes):
        pairs = []
        for _ in range(_copies((m * k + n * k) * bpe, llc)):
            if lay == "nt":
                a, b = torch.randn(m, k, dtype=dt, device=device), torch.randn(n, k, dtype=dt, device=device)
            elif lay == "nn":
                a, b = torch.randn(m, k, dtype=dt, device=device), torch.randn(k, n, dtype=dt, device=device)
            else:
                a, b = torch.randn(k, m, dtype=dt, device=device).t(), torch.randn(k, n, dtype=dt, device=device)
            pairs.append((a, b))
        state = {"i": 0}

        def fn(pairs: list[Any] = pairs, lay: str = lay, state: dict[str, int] = state) -> Any:
            a, b = pairs[state["i"] % len(pairs)]
            state["i"] += 1
            return torch.nn.functional.linear(a, b) if lay == "nt" else torch.mm(a, b)

        t = time_call(fn, device, **budget)
        out.append({"m": m, "n": n, "k": k, "layout": lay, "dtype": dtype, "t": t, "copies": len(pairs)})
        progress(i + 1, len(shapes))
    return out


# ------------------------------------------------------------------ memory
def last_level_cache_bytes(device: str) -> int:
    if device == "cuda":
        torch = require_torch()
        return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20) or (50 << 20))
    best = 0
    root = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in root.glob("index*") if root.is_dir() else []:
        try:
            size = (idx / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
        try:
            best = max(best, int(size.rstrip("KMG")) * mult)
        except ValueError:
            continue
    return best or (32 << 20)


def bench_stream(device: str, quick: bool = False, progress: Progress = _noop) -> dict[str, Any]:
    """STREAM copy/scale/add/triad on fp32 arrays of max(4 x LLC, 64 MiB) each; GB/s (median of repeats)."""
    torch = require_torch()
    llc = last_level_cache_bytes(device)
    n = max(4 * llc, 64 << 20) // 4
    if quick:
        n = max(2 * llc, 32 << 20) // 4
    a = torch.full((n,), 1.0, device=device)
    b = torch.full((n,), 2.0, device=device)
    c = torch.zeros(n, device=device)
    q = 3.0
    kernels = {
        "copy": (lambda: c.copy_(a), 2),
        "scale": (lambda: torch.mul(c, q, out=b), 2),
        "add": (lambda: torch.add(a, b, out=c), 3),
        "triad": (lambda: torch.add(b, c, alpha=q, out=a), 3),
    }
    res: dict[str, Any] = {"array_bytes": 4 * n, "llc_bytes": llc}
    for i, (name, (fn, arrays)) in enumerate(kernels.items()):
        t = time_call(fn, device, min_time=0.0, repeats=3 if quick else 7, warmup=1)
        res[f"{name}_gbs"] = round(arrays * 4 * n / t / 1e9, 3)
        progress(i + 1, len(kernels))
    return res


#: bytes the training estimator assigns to one optimizer step per parameter (paraplan.train.OPTIMIZER_BYTES) and to
#: the loss per token per vocabulary entry, forward + backward (3 passes of 12 bytes)
OPTIMIZER_BYTES = 30.0
LOSS_BYTES = 36.0


def bench_memory_ops(device: str, dtype: str, quick: bool = False, progress: Progress = _noop) -> list[dict[str, Any]]:
    """The streaming work the estimators price with ``memory_time``, each with the bytes they assign it:
    LayerNorm, GELU and residual add in ``dtype`` (reads + writes), the loss (fp32 cross-entropy over a
    4096-entry vocabulary, forward + backward: 36 B per token per entry) and the optimizer step (fp32 master
    weights: 16-bit gradients in, fused AdamW, 16-bit weights out, as :class:`paraplan.testing.gpt.Trainer` does:
    30 B per parameter)."""
    torch = require_torch()
    F = torch.nn.functional
    dt = torch_dtype(dtype)
    bpe = torch.tensor([], dtype=dt).element_size()
    h, vocab = 512, 4096
    if device == "cpu":
        rows = [64, 512, 4096] if quick else [32, 128, 512, 2048, 8192, 16384]
        loss_rows = [128, 1024] if quick else [64, 256, 1024, 4096]
        opt_params = [1 << 18, 1 << 22] if quick else [1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24]
    else:  # sizes well above the L2 cache and the launch-bound regime
        rows = [4096, 262144] if quick else [2048, 16384, 131072, 524288]
        loss_rows = [4096, 65536] if quick else [2048, 16384, 65536, 131072]
        opt_params = [1 << 20, 1 << 25] if quick else [1 << 20, 1 << 23, 1 << 25, 1 << 26]
    out = []
    total = 3 * len(rows) + len(loss_rows) + len(opt_params)
    budget = _budget(device, quick)
    w = torch.ones(h, dtype=dt, device=device)
    bias = torch.zeros(h, dtype=dt, device=device)
    done = 0

    def record(op: str, fn: Callable[[], Any], nbytes: float, size: int) -> None:
        nonlocal done
        out.append({"op": op, "bytes": nbytes, "size": size, "t": time_call(fn, device, **budget)})
        done += 1
        progress(done, total)

    for r in rows:
        x = torch.randn(r, h, dtype=dt, device=device)
        y = torch.randn(r, h, dtype=dt, device=device)
        x4 = torch.randn(r, 4 * h, dtype=dt, device=device)
        record("layernorm", lambda x=x: F.layer_norm(x, (h,), w, bias), 2.0 * r * h * bpe, r * h)
        record("act", lambda x4=x4: F.gelu(x4), 2.0 * r * 4 * h * bpe, r * 4 * h)
        record("add", lambda x=x, y=y: x + y, 3.0 * r * h * bpe, r * h)
    for r in loss_rows:
        logits = torch.randn(r, vocab, dtype=dt, device=device, requires_grad=True)
        target = torch.randint(0, vocab, (r,), device=device)

        def loss(logits: Any = logits, target: Any = target) -> None:
            F.cross_entropy(logits.float(), target).backward()
            logits.grad = None

        record("loss", loss, LOSS_BYTES * r * vocab, r * vocab)
    for n in opt_params:
        p16 = torch.randn(n, dtype=dt, device=device)
        g16 = torch.randn(n, dtype=dt, device=device)
        master = p16.float().requires_grad_(True)
        master.grad = torch.zeros_like(master)
        try:
            opt = torch.optim.AdamW([master], lr=1e-4, weight_decay=0.1, fused=True)
        except (RuntimeError, ValueError, TypeError):
            opt = torch.optim.AdamW([master], lr=1e-4, weight_decay=0.1, foreach=True)

        def step(opt: Any = opt, master: Any = master, p16: Any = p16, g16: Any = g16) -> None:
            with torch.no_grad():
                master.grad.copy_(g16)
                opt.step()
                p16.copy_(master)

        record("optimizer", step, OPTIMIZER_BYTES * n, n)
    return out


# ------------------------------------------------------------------ attention
def attention_shapes(device: str, quick: bool) -> list[tuple[int, int, int, int]]:
    """(batch, heads, seq, head_dim) for causal prefill / training attention."""
    if device == "cpu":
        seqs = [128, 512, 1024] if quick else [64, 128, 256, 512, 1024, 2048]
        dims = [64] if quick else [64, 128]
        bh = [(1, 4), (2, 8)] if quick else [(1, 4), (2, 8), (4, 16)]
        cap = 2.0**31
    else:
        seqs = [512, 2048, 8192] if quick else [256, 1024, 2048, 4096, 8192]
        dims = [64] if quick else [64, 128]
        bh = [(2, 16), (8, 32)]
        cap = 2.0**42
    out = []
    for s in seqs:
        for d in dims:
            for b, h in bh:
                if 2.0 * b * h * d * s * s <= cap:
                    out.append((b, h, s, d))
    return out


def bench_attention(device: str, dtype: str, quick: bool = False, progress: Progress = _noop,
                    backward: bool = True) -> list[dict[str, Any]]:
    """Causal SDPA forward (``t``) and forward+backward (``t_fb``) per shape."""
    torch = require_torch()
    F = torch.nn.functional
    dt = torch_dtype(dtype)
    shapes = attention_shapes(device, quick)
    budget = _budget(device, quick)
    out = []
    for i, (b, h, s, d) in enumerate(shapes):
        q, k, v = (torch.randn(b, h, s, d, dtype=dt, device=device, requires_grad=backward) for _ in range(3))
        with torch.no_grad():
            t = time_call(lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v, is_causal=True), device,
                          **budget)
        row = {"b": b, "h": h, "q": s, "kv": s, "d": d, "kvh": h, "t": t}
        if backward:
            g = torch.randn(b, h, s, d, dtype=dt, device=device)

            def fb(q=q, k=k, v=v, g=g) -> None:
                F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)
                q.grad = k.grad = v.grad = None

            row["t_fb"] = time_call(fb, device, **budget)
        out.append(row)
        progress(i + 1, len(shapes))
    return out


def bench_decode(device: str, dtype: str, quick: bool = False, progress: Progress = _noop) -> list[dict[str, Any]]:
    """Single-token attention over a KV cache (a strided view of a preallocated cache, as in the test GPT), the
    caches rotated through copies larger than the last-level cache (as the layers' caches are in decode)."""
    torch = require_torch()
    F = torch.nn.functional
    dt = torch_dtype(dtype)
    bpe = torch.tensor([], dtype=dt).element_size()
    llc = last_level_cache_bytes(device)
    if device == "cpu":
        h, d = 8, 64
        ctxs = [256, 1024, 4096] if quick else [128, 512, 1024, 2048, 4096]
        batches = [1, 8] if quick else [1, 4, 16]
    else:
        h, d = 32, 64
        ctxs = [1024, 16384] if quick else [1024, 4096, 16384]
        batches = [4, 32] if quick else [4, 16, 32]
    budget = _budget(device, quick)
    out = []
    total = len(ctxs) * len(batches)
    i = 0
    for b in batches:
        for c in ctxs:
            sets = []
            for _ in range(_copies(2 * b * h * c * d * bpe, llc)):
                kk = torch.randn(b, h, c + 64, d, dtype=dt, device=device)[:, :, :c]
                vv = torch.randn(b, h, c + 64, d, dtype=dt, device=device)[:, :, :c]
                sets.append((torch.randn(b, h, 1, d, dtype=dt, device=device), kk, vv))
            state = {"i": 0}

            def fn(sets: list[Any] = sets, state: dict[str, int] = state) -> Any:
                q, kk, vv = sets[state["i"] % len(sets)]
                state["i"] += 1
                return F.scaled_dot_product_attention(q, kk, vv)

            with torch.no_grad():
                t = time_call(fn, device, **budget)
            out.append({"b": b, "h": h, "kv": c, "d": d, "kvh": h, "t": t, "copies": len(sets)})
            i += 1
            progress(i, total)
    return out


# ------------------------------------------------------------------ collectives
def collective_sizes(device: str, quick: bool) -> list[int]:
    top = (16 << 20) if quick else (64 << 20)
    if device == "cuda":
        top = (256 << 20) if quick else (1 << 30)
    sizes, s = [], 4 << 10
    step = 8 if quick else 4
    while s <= top:
        sizes.append(s)
        s *= step
    return sizes


def bench_collectives(device: str, dtype: str, ranks: int, threads: int, quick: bool = False,
                      progress: Progress = _noop) -> dict[str, Any]:
    """Start ``ranks`` local processes; each first measures how much it slows down when all ranks compute at
    once (``load``), then every collective is timed by message size (max over ranks, median of repeats;
    ``points``). Empty when fewer than 2 ranks (or GPUs) are available."""
    torch = require_torch()
    if ranks < 2 or (device == "cuda" and torch.cuda.device_count() < ranks):
        return {"points": [], "load": None}
    from .dist import launch

    progress(0, 1)
    res = launch("collectives", ranks, {"device": device, "dtype": dtype, "threads": threads,
                                        "sizes": collective_sizes(device, quick), "quick": quick})
    progress(1, 1)
    return res


def peak_measured(points: list[dict[str, Any]]) -> float:
    """Best FLOP/s among GEMM points (for devices the catalog does not know)."""
    return max(2.0 * p["m"] * p["n"] * p["k"] / p["t"] for p in points)


def gc_device(device: str) -> None:
    torch = require_torch()
    sync(device)
    if device == "cuda":
        torch.cuda.empty_cache()


__all__ = ["bench_gemm", "bench_stream", "bench_memory_ops", "bench_attention", "bench_decode", "bench_collectives"]
