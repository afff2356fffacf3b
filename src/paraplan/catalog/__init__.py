"""The built-in catalog: models, accelerators and clusters as YAML data with sources.

YAML files use human units at the edge (TFLOP/s, GB, GB/s, us); the loaders convert to SI.

* ``models/*.yaml``: a list of :class:`~paraplan.specs.ModelSpec` fields.
* ``accelerators/*.yaml``: a list of entries with ``peak_tflops: {dtype: value}``, ``memory_gb``,
  ``memory_bw_gbs``, ``scaleup_bw_gbs`` (per direction), ``pcie_bw_gbs`` and the other
  :class:`~paraplan.specs.AcceleratorSpec` fields.
* ``clusters/*.yaml``: node presets: ``accelerator`` (a catalog name), ``per_node``, ``n_nodes``,
  ``scaleup: {name, bw_gbs, latency_us}``, ``scaleout: {name, bw_gbs, latency_us}`` (per accelerator,
  per direction), optional ``scaleup_domain``, ``default_for: [accelerator names]`` and
  ``host: {name, memory_gb, memory_bw_gbs, nvme_tb, nvme_gbs, source}`` (per node, for offloading).
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .. import _yaml
from ..errors import ConfigError, UnknownNameError
from ..specs import AcceleratorSpec, ClusterSpec, HostSpec, LinkTier, ModelSpec

_GB = 1e9


def normalize(name: str) -> str:
    """Canonical lookup key: lower case, alphanumerics only ("H100 80GB SXM" -> "h10080gbsxm")."""
    return re.sub(r"[^a-z0-9.]", "", name.lower()).replace(".", "p")


def _read_dir(sub: str) -> list[dict[str, Any]]:
    root = resources.files("paraplan.catalog").joinpath(sub)
    out: list[dict[str, Any]] = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.endswith((".yaml", ".yml")):
            data = _yaml.load_text(entry.read_text(encoding="utf-8")) or []
            if isinstance(data, dict):
                data = data.get("entries", [])
            for item in data:
                item.setdefault("_file", f"{sub}/{entry.name}")
                out.append(item)
    return out


class _Index:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.by_key: dict[str, Any] = {}
        self.names: list[str] = []

    def add(self, obj: Any, name: str, aliases: tuple[str, ...] | list[str]) -> None:
        self.names.append(name)
        for n in (name, *aliases):
            key = normalize(n)
            if key in self.by_key and self.by_key[key] is not obj:
                other = self.by_key[key]
                raise ValueError(f"catalog {self.kind}: '{n}' names both {getattr(other, 'name', other)} and {name}")
            self.by_key[key] = obj

    def get(self, name: str) -> Any:
        key = normalize(name)
        if key in self.by_key:
            return self.by_key[key]
        raise UnknownNameError(self.kind, name, self.suggest(name))

    def suggest(self, name: str, n: int = 5) -> list[str]:
        keys = list(self.by_key)
        close = difflib.get_close_matches(normalize(name), keys, n=n * 3, cutoff=0.5)
        seen: list[str] = []
        for k in close:
            nm = self.by_key[k].name
            if nm not in seen:
                seen.append(nm)
        if not seen:  # substring fallback
            q = normalize(name)
            seen = [self.by_key[k].name for k in keys if q and (q in k or k in q)]
            seen = list(dict.fromkeys(seen))
        return seen[:n]


# ---------------------------------------------------------------- models
def _model_from_yaml(d: dict[str, Any]) -> ModelSpec:
    d = {k: v for k, v in d.items() if not k.startswith("_")}
    d["aliases"] = tuple(d.get("aliases") or ())
    return ModelSpec(**d)


@cache
def _models() -> _Index:
    idx = _Index("model")
    for d in _read_dir("models"):
        try:
            m = _model_from_yaml(d)
        except Exception as exc:  # pragma: no cover - catalog errors are developer errors
            raise ValueError(f"bad model entry {d.get('name')} in {d.get('_file')}: {exc}") from exc
        idx.add(m, m.name, m.aliases)
    return idx


def models() -> list[ModelSpec]:
    idx = _models()
    return [idx.by_key[normalize(n)] for n in idx.names]


def get_model(name: str) -> ModelSpec:
    """A catalog model by name or alias (case and punctuation insensitive)."""
    return _models().get(name)


# ---------------------------------------------------------------- accelerators
def _acc_from_yaml(d: dict[str, Any]) -> AcceleratorSpec:
    d = {k: v for k, v in d.items() if not k.startswith("_")}
    peak = d.pop("peak_tflops")
    out: dict[str, Any] = {
        "peak_flops": {k: float(v) * 1e12 for k, v in peak.items() if v is not None},
        "memory_bytes": float(d.pop("memory_gb")) * _GB,
        "memory_bw": float(d.pop("memory_bw_gbs")) * _GB,
    }
    if "scaleup_bw_gbs" in d:
        out["scaleup_bw"] = float(d.pop("scaleup_bw_gbs")) * _GB
    if "pcie_bw_gbs" in d:
        out["pcie_bw"] = float(d.pop("pcie_bw_gbs")) * _GB
    d.pop("default_node", None)
    d["aliases"] = tuple(d.get("aliases") or ())
    return AcceleratorSpec(**d, **out)


@cache
def _accelerators() -> _Index:
    idx = _Index("accelerator")
    for d in _read_dir("accelerators"):
        try:
            a = _acc_from_yaml(d)
        except Exception as exc:  # pragma: no cover
            raise ValueError(f"bad accelerator entry {d.get('name')} in {d.get('_file')}: {exc}") from exc
        idx.add(a, a.name, a.aliases)
    return idx


def accelerators() -> list[AcceleratorSpec]:
    idx = _accelerators()
    return [idx.by_key[normalize(n)] for n in idx.names]


def get_accelerator(name: str) -> AcceleratorSpec:
    """A catalog accelerator by name or alias; a YAML file path loads a user-defined one."""
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        data = _yaml.read_user_file(name, ConfigError)
        if isinstance(data, list):
            data = data[0]
        return _acc_from_yaml(data)
    return _accelerators().get(name)


# ---------------------------------------------------------------- clusters
def _tier(d: dict[str, Any]) -> LinkTier:
    return LinkTier(name=d.get("name", ""), bw=float(d["bw_gbs"]) * _GB, latency_s=float(d.get("latency_us", 5)) * 1e-6)


def _host(d: dict[str, Any]) -> HostSpec:
    base = HostSpec()
    return HostSpec(
        name=str(d.get("name", base.name)),
        memory_bytes=float(d.get("memory_gb", base.memory_bytes / _GB)) * _GB,
        memory_bw=float(d.get("memory_bw_gbs", base.memory_bw / _GB)) * _GB,
        nvme_bytes=float(d.get("nvme_tb", base.nvme_bytes / 1e12)) * 1e12,
        nvme_bw=float(d.get("nvme_gbs", base.nvme_bw / _GB)) * _GB,
        source=str(d.get("source", "")),
    )


def _cluster_from_yaml(d: dict[str, Any]) -> ClusterSpec:
    d = {k: v for k, v in d.items() if not k.startswith("_")}
    d.pop("default_for", None)
    acc = get_accelerator(d.pop("accelerator"))
    if d.get("host") is not None:
        d["host"] = _host(d["host"])
    return ClusterSpec(
        accelerator=acc,
        scaleup=_tier(d.pop("scaleup")),
        scaleout=_tier(d.pop("scaleout")),
        aliases=tuple(d.pop("aliases", None) or ()),
        **d,
    )


@cache
def _clusters() -> tuple[_Index, dict[str, ClusterSpec]]:
    idx = _Index("cluster")
    defaults: dict[str, ClusterSpec] = {}
    for d in _read_dir("clusters"):
        default_for = d.get("default_for") or []
        try:
            c = _cluster_from_yaml(d)
        except UnknownNameError:
            raise
        except Exception as exc:  # pragma: no cover
            raise ValueError(f"bad cluster entry {d.get('name')} in {d.get('_file')}: {exc}") from exc
        idx.add(c, c.name, c.aliases)
        for a in default_for:
            defaults[get_accelerator(a).name] = c
    return idx, defaults


def clusters() -> list[ClusterSpec]:
    idx, _ = _clusters()
    return [idx.by_key[normalize(n)] for n in idx.names]


def default_cluster_for(acc: AcceleratorSpec) -> ClusterSpec:
    """The usual node for an accelerator (a preset marked ``default_for``), else a generic 8-way node."""
    _, defaults = _clusters()
    if acc.name in defaults:
        return defaults[acc.name]
    per_node = max(1, min(acc.scaleup_domain, 8)) if acc.kind != "cpu" else 1
    up_bw = acc.scaleup_bw or acc.pcie_bw
    return ClusterSpec(
        name=f"{acc.name}-node",
        accelerator=acc,
        per_node=per_node,
        n_nodes=1,
        scaleup=LinkTier(name=acc.scaleup_name or "PCIe", bw=up_bw, latency_s=5e-6 if acc.scaleup_bw else 10e-6),
        scaleout=LinkTier(name="200G Ethernet/IB", bw=25e9, latency_s=10e-6),
        source="generic node built from the accelerator entry (no preset)",
    )


def get_cluster(spec: str, n_accelerators: int | None = None) -> ClusterSpec:
    """Resolve a cluster: a preset name (``dgx-h100``), ``NAME:COUNT`` (``h100-sxm:1024``, ``dgx-a100:64``),
    or an accelerator name (one default node). ``n_accelerators`` rescales the result."""
    count: int | None = None
    name = spec.strip()
    m = re.fullmatch(r"(.+?)\s*[:x×*]\s*(\d+)", name)
    if m:
        name, count = m.group(1), int(m.group(2))
    idx, _ = _clusters()
    key = normalize(name)
    if key in idx.by_key:
        cluster = idx.by_key[key]
    else:
        try:
            acc = _accelerators().get(name)
        except UnknownNameError as exc:
            sugg = idx.suggest(name, 3) + exc.suggestions
            raise UnknownNameError("cluster or accelerator", name, list(dict.fromkeys(sugg))[:6]) from None
        cluster = default_cluster_for(acc)
    n = n_accelerators or count
    if n is not None and n != cluster.n_accelerators:
        cluster = cluster.with_accelerators(n)
    return cluster


def _accelerator_in_text(text: str) -> AcceleratorSpec | None:
    """The catalog accelerator whose longest alias (4+ characters) the text contains, if any."""
    key = normalize(text)
    best: tuple[int, AcceleratorSpec] | None = None
    for alias, acc in _accelerators().by_key.items():
        if len(alias) >= 4 and alias in key and (best is None or len(alias) > best[0]):
            best = (len(alias), acc)
    return None if best is None else best[1]


def _resolve_bare(text: str) -> ClusterSpec:
    """:func:`resolve_cluster` without the bracketed-system step (no recursion into it)."""
    try:
        return get_cluster(text)
    except UnknownNameError as error:
        acc = _accelerator_in_text(text)
        if acc is None:
            raise error from None
        return get_cluster(acc.name)


def resolve_cluster(text: str, n_accelerators: int | None = None) -> ClusterSpec:
    """Like :func:`get_cluster`, but for free-text hardware names as published tables write them
    ("H100 80GB SXM (DGX-H100)", "8x AMD MI300X, RoCE"): the exact name or alias first, then the text without
    its parenthesised parts, then the longest catalog accelerator alias contained in the text."""
    try:
        return get_cluster(text, n_accelerators)
    except UnknownNameError as first:
        error = first
    bare = re.sub(r"\([^)]*\)", " ", text).strip()
    # a system named in brackets ("8x A100-SXM4-40GB (AWS p4d)") is the node preset, when its accelerator agrees
    # with the text outside the brackets
    idx, _ = _clusters()
    outside: str | None = None  # the accelerator the text outside the brackets names ("" for none), when needed
    for part in re.findall(r"\(([^)]*)\)", text):
        for piece in re.split(r"[,;]", part):
            c = idx.by_key.get(normalize(re.sub(r"^\s*(AWS|GCP|Google Cloud|Azure)\s+", "", piece, flags=re.I)))
            if c is None:
                continue
            if outside is None:
                try:
                    outside = _resolve_bare(re.sub(r"^\s*\d+\s*[x×]\s+", "", bare)).accelerator.name
                except UnknownNameError:
                    outside = ""
            if outside in ("", c.accelerator.name):
                return c if n_accelerators in (None, c.n_accelerators) else c.with_accelerators(n_accelerators)
    if bare and bare != text:
        try:
            return get_cluster(bare, n_accelerators)
        except UnknownNameError:
            pass
    acc = _accelerator_in_text(text)
    if acc is None:
        raise error
    return get_cluster(acc.name, n_accelerators)
