"""The built-in accelerator and cluster catalog: coverage, sanity of the numbers, and name resolution."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import yaml

from paraplan import catalog
from paraplan.errors import UnknownNameError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FAMILIES = {"volta", "ampere", "ada", "hopper", "blackwell", "blackwell_gddr", "cdna2", "cdna3", "cdna4", "gaudi",
            "turing", "tpu", "trainium", "xe2", "cpu"}
CATALOG_DIR = Path(catalog.__file__).parent


def _column(filename: str, column: str) -> list[str]:
    path = DATA / filename
    if not path.is_file():
        pytest.skip(f"{path} not available")
    with path.open(newline="", encoding="utf-8") as fh:
        # An empty cell means the source did not state the hardware: nothing to resolve.
        return sorted({row[column].strip() for row in csv.DictReader(fh)} - {""})


# ------------------------------------------------------------------ accelerators
def test_enough_accelerators():
    assert len(catalog.accelerators()) >= 20


@pytest.mark.parametrize("acc", catalog.accelerators(), ids=lambda a: a.name)
def test_accelerator_entry_is_sane(acc):
    assert acc.source.strip(), f"{acc.name} has no source"
    assert acc.family in FAMILIES
    assert acc.memory_bytes > 0 and acc.memory_bw > 0
    assert acc.price_per_hour >= 0 and acc.tdp_w >= 0
    assert acc.scaleup_domain >= 1
    main = acc.peak("fp32") if acc.kind == "cpu" else acc.peak("bf16")
    assert main > 0
    assert all(v > 0 for v in acc.peak_flops.values())
    if acc.kind == "cpu":
        assert acc.cores and acc.cores > 0
    else:
        # dense tensor peaks never fall below the fp32 peak
        assert "fp32" not in acc.peak_flops or acc.peak("bf16") >= acc.peak_flops["fp32"]


def test_accelerator_units_are_si():
    h100 = catalog.get_accelerator("h100-sxm")
    assert h100.peak("bf16") == pytest.approx(989.4e12)
    assert h100.memory_bytes == pytest.approx(80e9)
    assert h100.memory_bw == pytest.approx(3.35e12)
    assert h100.scaleup_bw == pytest.approx(450e9)


def test_mi250x_is_counted_per_gcd():
    gcd = catalog.get_accelerator("AMD MI250X")
    assert gcd.family == "cdna2"
    assert gcd.peak("bf16") == pytest.approx(191.5e12)
    assert gcd.memory_bytes == pytest.approx(64e9)


def test_kinds_and_families_present():
    accs = catalog.accelerators()
    assert {a.kind for a in accs} == {"gpu", "npu", "cpu"}
    assert {a.family for a in accs} == FAMILIES
    assert sum(a.kind == "cpu" for a in accs) >= 3


@pytest.mark.parametrize(
    "alias, name",
    [
        ("H100", "h100-sxm"),
        ("h100 sxm 80gb", "h100-sxm"),
        ("H100 PCIe", "h100-pcie"),
        ("H100 NVL", "h100-nvl"),
        ("A100-SXM4-40GB", "a100-sxm-40gb"),
        ("A100 80GB PCIe", "a100-pcie-80gb"),
        ("B300", "gb300"),
        ("MI300X", "mi300x"),
        ("Gaudi 3", "gaudi3"),
        ("Xeon Platinum 8480+", "xeon-8480plus"),
        ("RTX PRO 6000", "rtx-pro-6000-server"),
        ("V100", "v100-sxm2-32gb"),
    ],
)
def test_accelerator_aliases(alias, name):
    assert catalog.get_accelerator(alias).name == name


# ------------------------------------------------------------------ clusters
EXPECTED_PRESETS = {
    "dgx-a100", "dgx-a100-40gb", "a100-roce-1600", "a100-40gb-roce-1600", "jean-zay-a100", "dgx-h100",
    "hgx-h100", "hgx-h200", "dgx-b200", "gb200-nvl72", "gb300-nvl72", "frontier-node", "dgx-2", "mi300x-node",
    "mi355x-node", "gaudi3-node", "l40s-node", "h100-pcie-node", "rtx-pro-6000-node",
}


def test_preset_clusters_listed():
    names = {c.name for c in catalog.clusters()}
    assert EXPECTED_PRESETS <= names
    assert any(c.accelerator.kind == "cpu" for c in catalog.clusters())


@pytest.mark.parametrize("cluster", catalog.clusters(), ids=lambda c: c.name)
def test_cluster_entry_is_sane(cluster):
    assert cluster.source.strip(), f"{cluster.name} has no source"
    assert cluster.scaleup.bw > 0 and cluster.scaleout.bw > 0
    assert cluster.scaleup.latency_s > 0 and cluster.scaleout.latency_s > 0
    assert cluster.n_accelerators >= 1
    if cluster.per_node > 1:
        # inside a node the fabric is at least as fast as the network
        assert cluster.scaleup.bw >= cluster.scaleout.bw


def test_nvl72_domains():
    for name in ("gb200-nvl72", "gb300-nvl72"):
        c = catalog.get_cluster(name)
        assert c.domain == 72 and c.n_accelerators == 72


def test_default_for_at_most_once_per_accelerator():
    seen: Counter[str] = Counter()
    for path in sorted((CATALOG_DIR / "clusters").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            for acc in entry.get("default_for") or []:
                seen[catalog.get_accelerator(acc).name] += 1
    assert seen and max(seen.values()) == 1, seen


def test_default_cluster_for_uses_presets():
    assert catalog.get_cluster("h100-sxm").name == "dgx-h100"
    assert catalog.get_cluster("mi250x-gcd").name == "frontier-node"
    assert catalog.get_cluster("gb200").name == "gb200-nvl72"


def test_every_yaml_entry_has_source():
    for sub in ("accelerators", "clusters"):
        for path in sorted((CATALOG_DIR / sub).glob("*.yaml")):
            for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
                assert str(entry.get("source", "")).strip(), f"{path.name}: {entry.get('name')} has no source"


# ------------------------------------------------------------------ name resolution
@pytest.mark.parametrize("gpu_type", _column("train-measured.csv", "gpu_type"))
def test_train_measured_gpu_types_resolve(gpu_type):
    assert catalog.get_cluster(gpu_type).n_accelerators >= 1


@pytest.mark.parametrize("hardware", _column("infer-measured.csv", "hardware"))
def test_infer_measured_hardware_resolves(hardware):
    assert catalog.get_cluster(hardware).n_accelerators >= 1


@pytest.mark.parametrize(
    "text, cluster",
    [
        ("A100 80GB (1600Gbps RoCE)", "a100-roce-1600"),
        ("A100 40GB (1600Gbps RoCE)", "a100-40gb-roce-1600"),
        ("A100 80GB (DGX A100, Selene)", "dgx-a100"),
        ("A100 80GB (Selene)", "dgx-a100"),
        ("H100 80GB SXM (DGX-H100)", "dgx-h100"),
        ("H100 80GB SXM", "hgx-h100"),
        ("AMD MI250X GCD (Frontier)", "frontier-node"),
        ("A100 80GB (Jean Zay, 48 nodes x 8)", "jean-zay-a100"),
        ("B200 (DGX-B200)", "dgx-b200"),
    ],
)
def test_network_strings_are_cluster_presets(text, cluster):
    assert catalog.get_cluster(text).name == cluster
    if "(" in text:  # network-qualified strings name a node preset, never a bare accelerator
        with pytest.raises(UnknownNameError):
            catalog.get_accelerator(text)


def test_network_numbers_of_known_setups():
    roce = catalog.get_cluster("A100 80GB (1600Gbps RoCE)")
    assert roce.scaleout.bw * roce.per_node == pytest.approx(1600e9 / 8)
    jz = catalog.get_cluster("A100 80GB (Jean Zay, 48 nodes x 8)")
    assert jz.n_accelerators == 384
    assert jz.scaleout.bw * jz.per_node == pytest.approx(50e9)
    frontier = catalog.get_cluster("frontier-node")
    assert frontier.scaleout.bw * frontier.per_node == pytest.approx(100e9)


def test_name_count_syntax():
    assert catalog.get_cluster("h100-sxm:1024").n_accelerators == 1024
    assert catalog.get_cluster("dgx-a100:64").n_accelerators == 64
    assert catalog.get_cluster("mi300x", n_accelerators=16).n_nodes == 2


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError) as err:
        catalog.get_cluster("H10O")
    assert any("h100" in s for s in err.value.suggestions)
    with pytest.raises(UnknownNameError) as err:
        catalog.get_accelerator("MI300Y")
    assert "mi300x" in err.value.suggestions
