"""Multi-process parts of the calibration: a launcher that starts one ``python -m paraplan.calibrate.dist``
process per rank (independent of the caller's ``__main__``, unlike multiprocessing's spawn), the collective
microbenchmark worker (gloo on CPU, NCCL on CUDA) and the process-group helpers the measured validation's
data-parallel runs share."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .device import CalibrationError, free_port, require_torch, setup_process, sync, torch_dtype


def init_group(rank: int, world: int, port: int, device: str) -> Any:
    """Join the local process group (gloo on CPU, NCCL on CUDA); returns ``torch.distributed``."""
    torch = require_torch()
    import torch.distributed as dist

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    backend = "gloo" if device == "cpu" else "nccl"
    kwargs: dict[str, Any] = {}
    if device == "cuda":
        kwargs["device_id"] = torch.device("cuda", rank)
    dist.init_process_group(backend, rank=rank, world_size=world, init_method=f"tcp://127.0.0.1:{port}", **kwargs)
    return dist


def max_over_ranks(value: float, device: str) -> float:
    """The largest ``value`` over the ranks (a step is as slow as its slowest rank)."""
    torch = require_torch()
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device="cpu" if device == "cpu" else "cuda")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def _fn(name: str) -> Any:
    import torch.distributed as dist

    alternatives = {"all_gather": ("all_gather_single", "all_gather_into_tensor"),
                    "reduce_scatter": ("reduce_scatter_single", "reduce_scatter_tensor")}[name]
    for a in alternatives:
        if hasattr(dist, a):
            return getattr(dist, a)
    raise AttributeError(name)  # pragma: no cover


def _load_rates(rank: int, world: int, dist: Any, device: str, dev: str, dt: Any, quick: bool) -> dict[str, Any]:
    """GEMM FLOP/s and STREAM-triad bandwidth of rank 0 alone (the others wait), then of every rank while all of
    them run: how much one rank slows down when its neighbours compute too (shared cores, caches, memory
    channels, power)."""
    torch = require_torch()
    from .bench import last_level_cache_bytes

    n = 1024
    a, b = torch.randn(n, n, dtype=dt, device=dev), torch.randn(n, n, dtype=dt, device=dev)
    m = max(4 * last_level_cache_bytes(device) // max(world, 1), 16 << 20) // 4
    x, y, z = (torch.full((m,), 1.0, device=dev) for _ in range(3))
    window = 0.25 if quick else 0.6  # seconds each measurement runs: the ranks' windows overlap

    def rates() -> tuple[float, float]:
        a @ b
        sync(device)
        t, k = time.perf_counter(), 0
        while time.perf_counter() - t < window:
            a @ b
            k += 1
            if k % 4 == 0:
                sync(device)
        sync(device)
        flops = k * 2.0 * n**3 / (time.perf_counter() - t)
        torch.add(y, z, alpha=3.0, out=x)
        sync(device)
        t, k = time.perf_counter(), 0
        while time.perf_counter() - t < window:
            torch.add(y, z, alpha=3.0, out=x)
            k += 1
        sync(device)
        bw = k * 12.0 * m / (time.perf_counter() - t)
        return flops, bw

    dist.barrier()
    alone = rates() if rank == 0 else (0.0, 0.0)
    dist.barrier()
    loaded = rates()
    vals = torch.tensor([loaded[0], loaded[1]], dtype=torch.float64, device="cpu" if device == "cpu" else dev)
    gathered = [torch.zeros_like(vals) for _ in range(world)]
    dist.all_gather(gathered, vals)
    flops_l = [float(g[0]) for g in gathered]
    bw_l = [float(g[1]) for g in gathered]
    return {"ranks": world, "alone_gemm_tflops": alone[0] / 1e12, "alone_triad_gbs": alone[1] / 1e9,
            "loaded_gemm_tflops": flops_l and [f / 1e12 for f in flops_l],
            "loaded_triad_gbs": [b_ / 1e9 for b_ in bw_l],
            "compute_factor": min(flops_l) / alone[0] if alone[0] else None,
            "bandwidth_factor": min(bw_l) / alone[1] if alone[1] else None}


def collective_worker(rank: int, world: int, port: int, device: str, dtype: str, threads: int, sizes: list[int],
                      out_path: str, quick: bool) -> None:
    """Time every collective for every message size; rank 0 writes ``[{op, bytes, ranks, t}]`` to ``out_path``."""
    torch = require_torch()
    setup_process(device, threads, rank, pin=True)
    dist = init_group(rank, world, port, device)
    dev = "cpu" if device == "cpu" else f"cuda:{rank}"
    dt = torch_dtype(dtype)
    bpe = torch.tensor([], dtype=dt).element_size()
    all_gather, reduce_scatter = _fn("all_gather"), _fn("reduce_scatter")
    rows: list[dict[str, Any]] = []
    try:
        load = _load_rates(rank, world, dist, device, dev, dt, quick)
        for op in ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv"):
            for size in sizes:
                n = max(size // bpe // world, 1) * world
                full = torch.ones(n, dtype=dt, device=dev)
                part = torch.ones(n // world, dtype=dt, device=dev)
                out = torch.empty(n, dtype=dt, device=dev)
                if op == "all_reduce":
                    def call(full: Any = full) -> None:
                        dist.all_reduce(full)
                elif op == "all_gather":
                    def call(out: Any = out, part: Any = part) -> None:
                        all_gather(out, part)
                elif op == "reduce_scatter":
                    def call(part: Any = part, full: Any = full) -> None:
                        reduce_scatter(part, full)
                elif op == "all_to_all":
                    def call(out: Any = out, full: Any = full) -> None:
                        dist.all_to_all_single(out, full)
                else:
                    def call(full: Any = full) -> None:
                        if rank == 0:
                            dist.send(full, 1)
                        elif rank == 1:
                            dist.recv(full, 0)
                iters = int(min(max((4 << 20) // max(n * bpe, 1), 2), 12 if quick else 30))
                for _ in range(2):
                    call()
                samples = []
                for _ in range(2 if quick else 3):
                    dist.barrier()
                    sync(device)
                    t = time.perf_counter()
                    for _ in range(iters):
                        call()
                    sync(device)
                    samples.append(max_over_ranks((time.perf_counter() - t) / iters, device))
                rows.append({"op": op, "bytes": n * bpe, "ranks": world, "t": statistics.median(samples)})
        if rank == 0:
            Path(out_path).write_text(json.dumps({"points": rows, "load": load}), encoding="utf-8")
    finally:
        dist.barrier()
        dist.destroy_process_group()


# ------------------------------------------------------------------ launcher
WORKERS = ("collectives", "ddp")


def launch(worker: str, world: int, payload: dict[str, Any], timeout_s: float = 600.0) -> Any:
    """Run ``worker`` in ``world`` local processes; returns what rank 0 wrote. A failing rank raises
    :class:`CalibrationError` with the end of its stderr."""
    if worker not in WORKERS:
        raise ValueError(f"unknown worker {worker!r}")
    with tempfile.TemporaryDirectory() as tmp:
        args_path, out_path = Path(tmp) / "args.json", Path(tmp) / "out.json"
        args_path.write_text(json.dumps(payload), encoding="utf-8")
        port = free_port()
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        procs = []
        for rank in range(world):
            err = open(Path(tmp) / f"rank{rank}.err", "w+b")  # noqa: SIM115 - closed below
            procs.append((subprocess.Popen(
                [sys.executable, "-m", "paraplan.calibrate.dist", worker, str(rank), str(world), str(port),
                 str(args_path), str(out_path)], stdout=subprocess.DEVNULL, stderr=err, env=env), err))
        deadline = time.monotonic() + timeout_s
        failed = None
        texts: list[str] = []
        try:
            for rank, (proc, _) in enumerate(procs):
                try:
                    rc = proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
                except subprocess.TimeoutExpired:
                    rc = None
                if rc != 0 and failed is None:
                    failed = (rank, rc)
                    for other, _ in procs:
                        if other.poll() is None:
                            other.kill()
        finally:
            for proc, err in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                err.seek(0)
                texts.append(err.read().decode(errors="replace"))
                err.close()
        if failed is not None:
            rank, rc = failed
            tail = " | ".join(texts[rank].strip().splitlines()[-3:])
            why = "timed out" if rc is None else f"exit code {rc}"
            raise CalibrationError(f"{worker} worker rank {rank} of {world} failed ({why}): {tail[-400:]}")
        return json.loads(out_path.read_text(encoding="utf-8"))


def main(argv: list[str]) -> int:
    worker, rank, world, port, args_path, out_path = argv
    payload = json.loads(Path(args_path).read_text(encoding="utf-8"))
    if worker == "collectives":
        collective_worker(int(rank), int(world), int(port), out_path=out_path, **payload)
    elif worker == "ddp":
        from .steps import ddp_worker

        ddp_worker(int(rank), int(world), int(port), out_path=out_path, **payload)
    else:
        raise SystemExit(f"unknown worker {worker!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
