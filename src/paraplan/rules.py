"""Framework rules as data: which schedules and ZeRO stages exist and which collectives overlap compute."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict

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


class Framework(BaseModel):
    """One framework's defaults (``catalog/rules/<name>.yaml``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    aliases: tuple[str, ...] = ()
    source: str = ""
    schedules: tuple[str, ...] = ("1f1b",)
    zero_stages: tuple[int, ...] = (0,)
    uneven_pp: bool = False
    tp_across_nodes: bool = False
    flash_attention: bool = True
    attention_kernel: str = "fused"
    attention_slowdown: dict[str, float] = {}  # per accelerator family: time factor against the curves
    overlap: Overlap = Overlap()


@cache
def _frameworks() -> dict[str, Framework]:
    out: dict[str, Framework] = {}
    root = resources.files("paraplan.catalog").joinpath("rules")
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            d = yaml.safe_load(entry.read_text(encoding="utf-8"))
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
