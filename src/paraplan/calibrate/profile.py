"""Calibration profiles: YAML data that the existing estimators apply.

A hardware profile (``paraplan calibrate --device ...``) is an accelerator entry in catalog units (the fields of
``catalog/accelerators/*.yaml``) plus a ``calibration:`` block::

    name: host-amd-epyc-1c-calibrated       # the accelerator entry, as in the catalog
    family: calibrated-host-amd-epyc-1c-3f9a1c2e
    peak_tflops: {fp32: ..., bf16: ...}     # spec-sheet peaks (curves are fractions of these)
    memory_bw_gbs: ...                      # measured: STREAM triad
    scaleup_bw_gbs: ...                     # measured: best collective bus bandwidth between local ranks
    ...
    calibration:
      format: 1
      kind: hardware
      device: cpu | cuda
      base: {...}                           # the uncalibrated spec-sheet entry it started from
      curves: {gemm, attention, memory, collectives}   # the forms and keys of catalog/curves/efficiency.yaml
      training: {compute_derate, attention_derate, layer_overhead_s, step_overhead_s}
      inference: {compute_derate, step_overhead_s, layer_overhead_s, seq_overhead_s}
      fit: {...}                            # fit errors and the probe-step fits, for the record
      measurements: {...}                   # the raw microbenchmark points (refit without re-measuring)

A runs profile (``paraplan calibrate --from-runs runs.csv``) has only the ``calibration:`` block, with
``kind: runs`` and ``training_families: {family: {parameter: value}}``.

:func:`load_profile` reads either, registers the calibrated curves with :mod:`paraplan.cost.efficiency` under the
profile's own family name, and returns a :class:`Profile` whose ``accelerator`` and ``calibration`` go straight
into :func:`~paraplan.train.estimate_training` (``calibration=``, ``calibration_source=``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from .. import _yaml
from ..catalog import _acc_from_yaml
from ..cost import efficiency as E
from ..specs import AcceleratorSpec, ClusterSpec, LinkTier
from .device import CalibrationError

FORMAT = 1
TRAINING_KEYS = ("compute_derate", "attention_derate", "layer_overhead_s", "step_overhead_s")
INFERENCE_KEYS = ("compute_derate", "step_overhead_s", "layer_overhead_s", "seq_overhead_s")


def family_name(entry_name: str, payload: Any) -> str:
    """A family name unique to one calibration: the entry's name plus a hash of what was measured."""
    digest = hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"calibrated-{entry_name}-{digest}"


def _numbers(d: Any, keys: tuple[str, ...], where: str) -> dict[str, float]:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise CalibrationError(f"{where}: expected a mapping of parameters, got {type(d).__name__}")
    out: dict[str, float] = {}
    for k, v in d.items():
        if k not in keys:
            continue
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise CalibrationError(f"{where}.{k}: not a number ({v!r})") from None
    return out


class Profile:
    """A loaded profile. ``accelerator`` is None for a runs profile (it calibrates whatever cluster it is applied
    to, by accelerator family)."""

    def __init__(self, doc: dict[str, Any], path: str | None = None) -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("calibration"), dict):
            raise CalibrationError(f"{path or 'profile'}: not a paraplan calibration profile (no 'calibration:' "
                                   "block; write one with 'paraplan calibrate')")
        cal = doc["calibration"]
        if int(cal.get("format", 0)) != FORMAT:
            raise CalibrationError(f"{path or 'profile'}: profile format {cal.get('format')!r} is not supported "
                                   f"(this paraplan reads format {FORMAT})")
        self.doc = doc
        self.path = path
        self.kind: str = str(cal.get("kind", "hardware"))
        where = path or "profile"
        self.accelerator: AcceleratorSpec | None = None
        self.base_accelerator: AcceleratorSpec | None = None
        self.training_families: dict[str, dict[str, float]] = {}
        self.calibration: dict[str, float] = {}
        self.inference_calibration: dict[str, float] = {}
        if self.kind == "hardware":
            entry = {k: v for k, v in doc.items() if k != "calibration"}
            try:
                self.accelerator = _acc_from_yaml(dict(entry))
                base = cal.get("base")
                self.base_accelerator = _acc_from_yaml(dict(base)) if isinstance(base, dict) else None
            except Exception as exc:  # pydantic ValidationError, KeyError: a malformed entry
                raise CalibrationError(f"{where}: bad accelerator entry: {' '.join(str(exc).split())}") from None
            curves = cal.get("curves")
            if not isinstance(curves, dict):
                raise CalibrationError(f"{where}: calibration.curves missing")
            try:
                E.register_family(self.accelerator.family, curves, source=self.describe(),
                                  base=self.base_accelerator.family if self.base_accelerator else None)
            except ValueError as exc:
                raise CalibrationError(f"{where}: {exc}") from None
            self.calibration = _numbers(cal.get("training"), TRAINING_KEYS, f"{where}: calibration.training")
            self.inference_calibration = _numbers(cal.get("inference"), INFERENCE_KEYS,
                                                  f"{where}: calibration.inference")
            if self.calibration:
                self.training_families[self.accelerator.family] = self.calibration
        elif self.kind == "runs":
            fams = cal.get("training_families")
            if not isinstance(fams, dict) or not fams:
                raise CalibrationError(f"{where}: a runs profile needs calibration.training_families")
            self.training_families = {f: _numbers(p, TRAINING_KEYS, f"{where}: training_families.{f}")
                                      for f, p in fams.items()}
        else:
            raise CalibrationError(f"{where}: unknown profile kind {self.kind!r} (hardware or runs)")

    # ------------------------------------------------------------------ descriptions
    def describe(self) -> str:
        cal = self.doc["calibration"]
        what = f"profile {Path(self.path).name}" if self.path else "calibration profile"
        if self.kind == "runs":
            return f"{what}: fitted on measured runs ({cal.get('data', '?')}, {cal.get('created', '?')})"
        host = cal.get("host") or {}
        dev = host.get("gpu") or host.get("cpu") or cal.get("device", "?")
        return (f"{what}: paraplan calibrate --device {cal.get('device', '?')} on {dev}, "
                f"{cal.get('threads', '?')} thread(s), torch {cal.get('torch', '?')}, {cal.get('created', '?')}")

    # ------------------------------------------------------------------ applying it
    def training_params(self, family: str) -> dict[str, float]:
        """The shared training parameters for an accelerator family (the ``calibration`` argument)."""
        if family in self.training_families:
            return dict(self.training_families[family])
        raise CalibrationError(f"{self.path or 'profile'} has no training parameters for accelerator family "
                               f"'{family}' (it has: {', '.join(sorted(self.training_families)) or 'none'})")

    def apply(self, cluster: ClusterSpec) -> tuple[ClusterSpec, dict[str, float]]:
        """``(cluster, calibration)`` for :func:`~paraplan.train.estimate_training`: a hardware profile replaces the
        cluster's accelerator with the calibrated one; a runs profile keeps it and supplies its family's
        parameters."""
        if self.accelerator is not None:
            cluster = cluster.model_copy(update={"accelerator": self.accelerator})
        return cluster, self.training_params(cluster.accelerator.family)

    def loaded_accelerator(self, n: int) -> AcceleratorSpec:
        """The calibrated accelerator as one of ``n`` ranks that all compute at once on this host: peaks and
        bandwidth scaled by the factors measured with every rank busy (``calibration.loaded``; CPU hosts, whose
        ranks share cores, caches, memory channels and power). Unscaled where nothing was measured."""
        if self.accelerator is None:
            raise CalibrationError("a runs profile has no accelerator")
        load = self.doc["calibration"].get("loaded") or {}
        if n <= 1 or not load:
            return self.accelerator
        cf, bf = float(load.get("compute_factor", 1.0)), float(load.get("bandwidth_factor", 1.0))
        acc = self.accelerator
        return acc.model_copy(update={
            "name": f"{acc.name}-loaded", "peak_flops": {k: v * cf for k, v in acc.peak_flops.items()},
            "memory_bw": acc.memory_bw * bf,
            "source": f"{acc.source}; one of {n} busy ranks on this host: peaks x {cf:.3g}, bandwidth x {bf:.3g} "
                      f"(measured with all {load.get('ranks', n)} ranks computing)"})

    def cluster(self, n: int | None = None, *, calibrated: bool = True) -> ClusterSpec:
        """A node of ``n`` (default: the measured number of local ranks) calibrated accelerators joined by the
        measured local fabric; ``calibrated=False`` gives the same node with the uncalibrated base entry."""
        acc = self.accelerator if calibrated else (self.base_accelerator or self.accelerator)
        if acc is None:
            raise CalibrationError("a runs profile has no accelerator; apply it to a cluster instead")
        cal = self.doc["calibration"]
        ranks = int(cal.get("ranks", 1) or 1)
        n = n or ranks
        if calibrated and n > 1:
            acc = self.loaded_accelerator(n)
        link = (cal.get("link") or {}) if calibrated else {}
        bw = float(link.get("bw_gbs") or 0.0) * 1e9
        lat = float(link.get("latency_us") or 10.0) * 1e-6
        if bw <= 0.0:  # uncalibrated, or not measured (one device): the entry's own scale-up or host link
            bw = acc.scaleup_bw or acc.pcie_bw
        name = str(link.get("name") or (acc.scaleup_name if acc.scaleup_bw else "") or "host link (PCIe)")
        tier = LinkTier(name=name, bw=bw, latency_s=lat)
        return ClusterSpec(name=f"{acc.name}-local", accelerator=acc, per_node=n, n_nodes=1, scaleup=tier,
                           scaleout=tier, scaleup_domain=max(n, 1),
                           source=f"local node of {n} rank(s) ({self.describe()})")


def load_profile(path: str | Path) -> Profile:
    """Read a profile written by ``paraplan calibrate`` (hardware) or ``paraplan calibrate --from-runs`` (runs).

    Registers the calibrated curves, so estimates priced on ``profile.accelerator`` use them. For
    ``paraplan train --calibration profile.yaml``::

        prof = load_profile(path)
        cluster, calibration = prof.apply(cluster)
        est = estimate_training(model, cluster, strategy, workload, calibration=calibration,
                                calibration_source=prof.describe())
    """
    p = Path(path)
    return Profile(_yaml.read_user_file(p, CalibrationError, max_chars=200), str(p))


def save_profile(doc: dict[str, Any], path: str | Path, header: str = "") -> Path:
    """Write a profile document as YAML (accelerator fields first, then the calibration block)."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(_plain(doc), sort_keys=False, width=120, allow_unicode=True)
    p.write_text((header + "\n" if header else "") + text, encoding="utf-8")
    return p


def _plain(x: Any) -> Any:
    """Numpy scalars and tuples to plain YAML types, floats rounded to 6 significant digits."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, str):
        return str(x)  # str subclasses (torch's version string) as plain text
    if hasattr(x, "item") and not isinstance(x, str | bytes):
        x = x.item()
    if isinstance(x, float):
        return float(f"{x:.6g}")
    return x
