"""More accelerators and cluster presets: free-text hardware names resolve to the right catalog entry, every new
entry is sourced and sane, and a training and a serving estimate run on each new accelerator."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from paraplan import catalog, estimate_inference, estimate_training
from paraplan.infer import InferenceConfig
from paraplan.strategy import Strategy
from paraplan.train import Workload

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

NEW_ACCELERATORS = [
    # NVIDIA
    "v100-sxm2-16gb", "v100-pcie-16gb", "v100-pcie-32gb", "v100s-pcie-32gb", "t4", "a800-sxm-80gb", "a800-pcie-80gb",
    "a30", "rtx-a6000", "l40", "rtx-6000-ada", "h800-sxm", "h800-pcie", "h20", "gh200-96gb", "gh200-144gb",
    # AMD, Intel
    "mi250", "mi250-gcd", "mi300a", "gaudi2",
    # Google, AWS
    "tpu-v3", "tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "trainium1", "trainium2", "inferentia2",
]

NEW_CLUSTERS = [
    "dgx-1", "hgx-a800", "dgx-h800", "deepseek-v3-h800", "hgx-h20", "gh200-quad-node", "gh200-nvl2", "dgx-gh200",
    "mi250-node", "mi300a-node", "gaudi2-hls",
    "aws-p3", "aws-p3dn", "aws-p4d", "aws-p4de", "aws-p5", "aws-p5e", "aws-trn1", "aws-trn1n", "aws-trn2",
    "aws-trn2-ultraserver", "aws-inf2",
    "gcp-a3-high", "gcp-a3-mega", "gcp-a3-ultra", "tpu-v3-pod", "tpu-v4-pod", "tpu-v5e-pod", "tpu-v5p-pod",
    "tpu-v6e-pod",
    "azure-nd-h100-v5", "azure-nd-a100-v4", "azure-ndm-a100-v4",
]


# ------------------------------------------------------------------ free-text resolution
@pytest.mark.parametrize(
    "text, accelerator",
    [
        # spellings from published tables
        ("H800 80GB SXM", "h800-sxm"),
        ("NVIDIA H800 SXM5 80GB", "h800-sxm"),
        ("H800", "h800-sxm"),
        ("H800 PCIe", "h800-pcie"),
        ("A800 80GB", "a800-sxm-80gb"),
        ("NVIDIA A800-SXM4-80GB", "a800-sxm-80gb"),
        ("A800 PCIe 80GB", "a800-pcie-80gb"),
        ("H20", "h20"),
        ("NVIDIA H20 96GB", "h20"),
        ("GH200", "gh200-96gb"),
        ("GH200 Grace Hopper Superchip", "gh200-96gb"),
        ("NVIDIA GH200 144GB HBM3e", "gh200-144gb"),
        ("V100-SXM2-16GB", "v100-sxm2-16gb"),
        ("Tesla V100-SXM2-16GB", "v100-sxm2-16gb"),
        ("V100 PCIe 16GB", "v100-pcie-16gb"),
        ("Tesla V100-PCIE-32GB", "v100-pcie-32gb"),
        ("V100S", "v100s-pcie-32gb"),
        ("V100 32GB (DGX-2H)", "v100-sxm2-32gb"),
        ("A30", "a30"),
        ("RTX A6000", "rtx-a6000"),
        ("NVIDIA L40 48GB", "l40"),
        ("Tesla T4", "t4"),
        ("T4", "t4"),
        ("RTX 6000 Ada Generation", "rtx-6000-ada"),
        ("8x A100-SXM4-40GB (AWS p4d)", "a100-sxm-40gb"),
        ("p4d.24xlarge", "a100-sxm-40gb"),
        ("p5.48xlarge", "h100-sxm"),
        ("p5e.48xlarge", "h200-sxm"),
        ("a3-megagpu-8g", "h100-sxm"),
        ("ND H100 v5", "h100-sxm"),
        ("TPU v3", "tpu-v3"),
        ("TPU v4", "tpu-v4"),
        ("TPU v4 (2 pods x 3072 chips)", "tpu-v4"),
        ("Google TPU v5e", "tpu-v5e"),
        ("TPU v5 lite", "tpu-v5e"),
        ("TPUv5p", "tpu-v5p"),
        ("TPU v5p", "tpu-v5p"),
        ("TPU v6e (Trillium)", "tpu-v6e"),
        ("Trillium", "tpu-v6e"),
        ("Trainium", "trainium1"),
        ("AWS Trainium (trn1.32xlarge)", "trainium1"),
        ("Trainium2", "trainium2"),
        ("trn2.48xlarge", "trainium2"),
        ("Trn2 UltraServer", "trainium2"),
        ("Inferentia2", "inferentia2"),
        ("inf2.48xlarge", "inferentia2"),
        ("Gaudi2", "gaudi2"),
        ("Intel Gaudi 2", "gaudi2"),
        ("HLS-Gaudi2", "gaudi2"),
        ("Gaudi 3", "gaudi3"),
        ("MI300X", "mi300x"),
        ("AMD Instinct MI300A APU", "mi300a"),
        ("MI300A", "mi300a"),
        ("AMD Instinct MI250", "mi250"),
        ("MI250 GCD", "mi250-gcd"),
        ("4x MI250X", "mi250x-gcd"),
        ("AMD MI250X GCD (Frontier)", "mi250x-gcd"),
        ("El Capitan", "mi300a"),
        # existing spellings keep their meaning
        ("H100 80GB SXM", "h100-sxm"),
        ("H200 SXM 141GB", "h200-sxm"),
        ("NVIDIA H200", "h200-sxm"),
        ("L40S 48GB", "l40s"),
        ("NVIDIA L4", "l4"),
        ("B300", "gb300"),
    ],
)
def test_free_text_resolves_to_accelerator(text, accelerator):
    assert catalog.resolve_cluster(text).accelerator.name == accelerator


@pytest.mark.parametrize(
    "text, cluster, n",
    [
        ("H800 (DeepSeek-V3)", "deepseek-v3-h800", 2048),
        ("DGX H800", "dgx-h800", 8),
        ("HGX A800", "hgx-a800", 8),
        ("HGX H20", "hgx-h20", 8),
        ("Alps", "gh200-quad-node", 4),
        ("DGX GH200", "dgx-gh200", 256),
        ("El Capitan", "mi300a-node", 4),
        ("trn1.32xlarge", "aws-trn1", 16),
        ("trn2.48xlarge", "aws-trn2", 16),
        ("Trn2 UltraServer", "aws-trn2-ultraserver", 64),
        ("A100 40GB (AWS p4d)", "aws-p4d", 8),
        ("TPU v5p pod", "tpu-v5p-pod", 4),
        ("HLS-Gaudi2", "gaudi2-hls", 8),
    ],
)
def test_named_systems_are_presets(text, cluster, n):
    c = catalog.resolve_cluster(text)
    assert c.name == cluster and c.n_accelerators == n


@pytest.mark.parametrize(
    "accelerator, cluster",
    [
        ("h800-sxm", "dgx-h800"), ("a800-sxm-80gb", "hgx-a800"), ("h20", "hgx-h20"), ("gh200-96gb", "gh200-quad-node"),
        ("gh200-144gb", "gh200-nvl2"), ("v100-sxm2-16gb", "dgx-1"), ("mi250", "mi250-node"), ("mi300a", "mi300a-node"),
        ("gaudi2", "gaudi2-hls"), ("trainium1", "aws-trn1"), ("trainium2", "aws-trn2"), ("inferentia2", "aws-inf2"),
        ("tpu-v3", "tpu-v3-pod"), ("tpu-v4", "tpu-v4-pod"), ("tpu-v5e", "tpu-v5e-pod"), ("tpu-v5p", "tpu-v5p-pod"),
        ("tpu-v6e", "tpu-v6e-pod"),
    ],
)
def test_default_presets(accelerator, cluster):
    assert catalog.get_cluster(accelerator).name == cluster


# The hardware spellings of the measured-data files resolve to the same presets as before these entries existed.
CSV_EXPECTED = {
    "A100 40GB (1600Gbps RoCE)": "a100-40gb-roce-1600",
    "A100 80GB (1600Gbps RoCE)": "a100-roce-1600",
    "A100 80GB (DGX A100, Selene)": "dgx-a100",
    "A100 80GB (Jean Zay, 48 nodes x 8)": "jean-zay-a100",
    "A100 80GB (Selene)": "dgx-a100",
    "AMD MI250X GCD (Frontier)": "frontier-node",
    "B200 (DGX-B200)": "dgx-b200",
    "H100 80GB SXM": "hgx-h100",
    "H100 80GB SXM (DGX-H100)": "dgx-h100",
    "NVIDIA Ampere (A100-class)": "dgx-a100",
    "8 low-resource edge devices (emulated/real testbeds)": "tpi-llm-edge-8",
    "A10 24GB (ECC disabled)": "a10-node",
    "A100 80GB (SXM assumed, not stated)": "dgx-a100",
    "A100 80GB SXM": "dgx-a100",
    "B200 180GB": "dgx-b200",
    "H100 80GB": "dgx-h100",
    "H100 SXM 80GB": "dgx-h100",
    "H200 SXM 141GB": "hgx-h200",
    "L40S 48GB": "l40s-node",
    "RTX 3090 24GB": "rtx-3090-node",
}


@pytest.mark.parametrize("text, cluster", sorted(CSV_EXPECTED.items()))
def test_measured_data_spellings_unchanged(text, cluster):
    assert catalog.resolve_cluster(text).name == cluster


def _csv_values(filename: str, column: str) -> list[str]:
    path = DATA / filename
    if not path.is_file():
        pytest.skip(f"{path} not available")
    with path.open(newline="", encoding="utf-8") as fh:
        return sorted({row[column].strip() for row in csv.DictReader(fh)} - {""})


@pytest.mark.parametrize("filename, column", [("train-measured.csv", "gpu_type"), ("infer-measured.csv", "hardware")])
def test_every_measured_spelling_is_pinned(filename, column):
    """A new spelling in the data must be added to CSV_EXPECTED (so a catalog change cannot silently move it)."""
    missing = [v for v in _csv_values(filename, column) if v not in CSV_EXPECTED]
    assert not missing


# ------------------------------------------------------------------ the new entries
def test_new_entries_exist():
    accs = {a.name for a in catalog.accelerators()}
    assert set(NEW_ACCELERATORS) <= accs
    clusters = {c.name for c in catalog.clusters()}
    assert set(NEW_CLUSTERS) <= clusters


@pytest.mark.parametrize("name", NEW_ACCELERATORS)
def test_new_accelerator_is_sourced_and_sane(name):
    acc = catalog.get_accelerator(name)
    assert len(acc.source.strip()) > 40, f"{name} has no real source"
    assert acc.peak_flops and all(v > 0 and math.isfinite(v) for v in acc.peak_flops.values())
    assert acc.peak("bf16") > 0
    assert acc.memory_bytes > 0 and acc.memory_bw > 0
    assert acc.scaleup_bw > 0 and acc.scaleup_domain >= 1 and acc.pcie_bw > 0
    assert acc.price_per_hour >= 0 and acc.tdp_w >= 0
    assert acc.family and acc.vendor
    # bytes per FLOP in a plausible accelerator range: catches TB/GB or TFLOP/GFLOP slips
    assert 1e-4 < acc.memory_bw / acc.peak("bf16") < 0.1
    assert 1e9 < acc.memory_bytes < 1e12


@pytest.mark.parametrize("name", NEW_CLUSTERS)
def test_new_cluster_is_sourced_and_sane(name):
    c = catalog.get_cluster(name)
    assert len(c.source.strip()) > 40
    assert c.scaleup.bw > 0 and c.scaleout.bw > 0
    assert c.domain >= c.per_node or c.scaleup_domain is None
    if c.per_node > 1:
        assert c.scaleup.bw >= c.scaleout.bw
    if c.host is not None:
        assert c.host.source and c.host.memory_bytes > 0


def test_families():
    fam = {n: catalog.get_accelerator(n).family for n in NEW_ACCELERATORS}
    assert {fam[n] for n in ("tpu-v3", "tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e")} == {"tpu"}
    assert {fam[n] for n in ("trainium1", "trainium2", "inferentia2")} == {"trainium"}
    assert fam["t4"] == "turing"
    assert {fam[n] for n in ("h800-sxm", "h800-pcie", "h20", "gh200-96gb", "gh200-144gb")} == {"hopper"}
    assert {fam[n] for n in ("a800-sxm-80gb", "a30", "rtx-a6000")} == {"ampere"}
    assert {fam[n] for n in ("l40", "rtx-6000-ada")} == {"ada"}
    assert fam["mi300a"] == "cdna3" and fam["mi250"] == "cdna2" and fam["gaudi2"] == "gaudi"


def test_key_numbers():
    h800, h100 = catalog.get_accelerator("h800-sxm"), catalog.get_accelerator("h100-sxm")
    assert h800.peak("bf16") == h100.peak("bf16")
    assert h800.scaleup_bw == pytest.approx(200e9)  # NVLink 400 GB/s bidirectional
    assert catalog.get_accelerator("a800-sxm-80gb").scaleup_bw == pytest.approx(200e9)
    assert catalog.get_accelerator("h20").peak("bf16") == pytest.approx(148e12)
    v5p = catalog.get_accelerator("tpu-v5p")
    assert v5p.peak("bf16") == pytest.approx(459e12) and v5p.scaleup_bw == pytest.approx(600e9)
    assert catalog.get_accelerator("tpu-v5e").scaleup_domain == 256
    assert catalog.get_accelerator("trainium2").peak("fp8") == pytest.approx(1299e12)
    # the full MI250 package is two GCDs
    mi250, gcd = catalog.get_accelerator("mi250"), catalog.get_accelerator("mi250-gcd")
    assert mi250.peak("bf16") == pytest.approx(2 * gcd.peak("bf16"))
    assert mi250.memory_bytes == pytest.approx(2 * gcd.memory_bytes)
    # TPU slices: ICI domain far beyond one host; DeepSeek-V3: 2048 H800 with 400G IB per GPU
    pod = catalog.get_cluster("tpu-v5p-pod", 1024)
    assert pod.domain == 6144 and pod.n_nodes == 256
    ds = catalog.get_cluster("deepseek-v3-h800")
    assert ds.n_accelerators == 2048 and ds.scaleout.bw == pytest.approx(50e9)


# ------------------------------------------------------------------ estimates run on every new accelerator
@pytest.mark.parametrize("name", NEW_ACCELERATORS)
def test_training_estimate_runs(name):
    model = catalog.get_model("gpt-3-350m")
    cluster = catalog.get_cluster(name, 1)
    est = estimate_training(model, cluster, Strategy(dp=1, micro_batch=1, global_batch=8), Workload(seq_len=1024))
    assert est.step_time_s > 0 and math.isfinite(est.step_time_s)
    assert 0 < est.mfu < 1
    assert est.accelerator == name


@pytest.mark.parametrize("name", NEW_ACCELERATORS)
def test_serving_estimate_runs(name):
    model = catalog.get_model("gpt-3-350m")
    cluster = catalog.get_cluster(name, 1)
    est = estimate_inference(model, cluster, InferenceConfig(), batch=4, input_len=512, output_len=128)
    assert est.fits
    assert 0 < est.ttft_s < est.e2e_s and math.isfinite(est.e2e_s)
    assert est.tpot_s > 0 and est.output_tokens_per_s > 0


@pytest.mark.parametrize("text,preset,acc", [
    ("8x A100-SXM4-40GB (AWS p4d)", "aws-p4d", "a100-sxm-40gb"),
    ("8x H100 (GCP a3-mega)", "gcp-a3-mega", "h100-sxm"),
    ("H100 (AWS p4d)", "dgx-h100", "h100-sxm"),  # the bracketed system disagrees with the chip: the chip wins
])
def test_a_system_named_in_brackets_is_the_preset_when_it_agrees(text: str, preset: str, acc: str) -> None:
    c = catalog.resolve_cluster(text, 16)
    assert (c.name, c.accelerator.name, c.n_accelerators) == (preset, acc, 16)
