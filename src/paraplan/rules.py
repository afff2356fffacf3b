"""Framework rules as data: which schedules and ZeRO stages exist, which collectives overlap compute, which
legality rules are enforced (with their options) and what the planner searches."""

from __future__ import annotations

from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, model_validator

from . import _yaml
from .catalog import normalize
from .errors import UnknownNameError


class Overlap(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    tp: float = 0.0
    cp: float = 1.0
    ep: float = 0.0
    pp: float = 0.0
    dp_grad: float = 1.0
    dp_param: float = 1.0
    zero3: float = 1.0
    offload: float = 1.0  # parameter/gradient traffic to host memory or NVMe hidden under forward/backward


class Legality(BaseModel):
    """Which legality rules a framework enforces, and their options (``legality:`` in the framework file).

    Each rule is implemented once, in :func:`paraplan.strategy.legality_masks`; this is only data.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    rules: tuple[str, ...] = ()  # enforced rule names (keys of paraplan.strategy.RULES); empty: all
    uneven_pp: bool = False  # stages may hold different layer counts: pp_divides_layers not enforced
    tp_across_nodes: bool = False  # TP/CP groups may span scale-up domains: tp_in_scaleup_domain not enforced
    cp_chunks: int = 2  # context parallelism cuts the sequence into cp_chunks * cp pieces (load-balanced ring)

    @model_validator(mode="after")
    def _known(self) -> Legality:
        from .strategy import RULES

        unknown = [r for r in self.rules if r not in RULES]
        if unknown:
            raise ValueError(f"unknown legality rule(s) {unknown}; known: {sorted(RULES)}")
        if not self.rules:
            object.__setattr__(self, "rules", tuple(RULES))
        return self


class Search(BaseModel):
    """What the planner enumerates for a framework beyond its schedules and ZeRO stages."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sequence_parallel: bool = True  # offers Megatron-style sequence parallelism with TP
    context_parallel: bool = True  # offers context (sequence-dimension) parallelism
    expert_parallel: bool = True  # offers expert parallelism for MoE models
    hsdp: bool = False  # offers hybrid sharding (shard inside a scale-up domain, replicate across)
    max_vpp: int = 16  # largest number of virtual stages per rank the planner tries


class Offload(BaseModel):
    """Where a framework can put model states off the accelerator (``offload:`` in the framework file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    optimizer: tuple[str, ...] = ()  # tiers for optimizer states (+ gradients from ZeRO-2): cpu, nvme
    params: tuple[str, ...] = ()  # tiers for the (ZeRO-3 sharded) parameters
    source: str = ""


class Framework(BaseModel):
    """One framework's defaults (``catalog/rules/<name>.yaml``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    aliases: tuple[str, ...] = ()
    source: str = ""
    schedules: tuple[str, ...] = ("1f1b",)
    zero_stages: tuple[int, ...] = (0,)
    legality: Legality = Legality()
    search: Search = Search()
    flash_attention: bool = True
    attention_kernel: str = "fused"
    attention_slowdown: dict[str, float] = {}  # per accelerator family: time factor against the curves
    overlap: Overlap = Overlap()
    offload: Offload = Offload()
    #: bytes per parameter of the gradient buffer in mixed precision (16-bit grads: 2; fp32 main grads: 4)
    mixed_grad_bytes: float = 2.0
    #: pipeline sends split across the TP ranks (Megatron's scatter/gather, Narayanan et al. 2021 sec. 4.1);
    #: False: every TP rank sends the whole boundary activation (without sequence parallelism)
    pp_scatter_gather: bool = True

    @property
    def uneven_pp(self) -> bool:
        return self.legality.uneven_pp

    @property
    def tp_across_nodes(self) -> bool:
        return self.legality.tp_across_nodes


@cache
def _frameworks() -> dict[str, Framework]:
    out: dict[str, Framework] = {}
    root = resources.files("paraplan.catalog").joinpath("rules")
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            d = _yaml.load_text(entry.read_text(encoding="utf-8"))
            if not isinstance(d, dict) or "schedules" not in d:
                continue  # not a framework file (e.g. features.yaml)
            fw = Framework(**{**d, "aliases": tuple(d.get("aliases") or ())})
            for n in (fw.name, *fw.aliases):
                out[normalize(n)] = fw
    return out


def get_framework(name: str) -> Framework:
    fws = _frameworks()
    key = normalize(name)
    if key not in fws:
        raise UnknownNameError("framework", name, sorted({f.name for f in fws.values()}))
    return fws[key]
