import pytest

from paraplan.catalog import get_model
from paraplan.techniques import ucp


def test_atom_bytes_are_12_per_param():
    m = get_model("llama-2-7b")
    assert ucp.atom_bytes(m) == pytest.approx(12 * m.n_params())


def test_shards_conserve_bytes():
    m = get_model("llama-2-7b")
    lay = ucp.Layout(tp=2, pp=2, dp=4, zero=1)
    total = ucp.shard_bytes_per_rank(m, lay) * lay.ranks
    # weights replicated over dp, optimizer states sharded: 2 B x dp + 12 B per param
    assert total == pytest.approx(m.n_params() * (2 * 4 + 12))


def test_reshard_time_scales_with_nodes():
    m = get_model("llama-2-7b")
    a = ucp.reshard(m, ucp.Layout(tp=2), ucp.Layout(tp=4), nodes=1, read_gbs_per_node=2, write_gbs_per_node=1)
    b = ucp.reshard(m, ucp.Layout(tp=2), ucp.Layout(tp=4), nodes=4, read_gbs_per_node=2, write_gbs_per_node=1)
    assert b["total_s"] == pytest.approx(a["total_s"] / 4)
