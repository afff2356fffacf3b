from paraplan.techniques import datastates as D

ARGS = dict(model="llama-2-7b", gpus=16, tp=4, pp=1, global_batch=16)


def test_lazy_never_blocks_more_than_sync():
    c = D.checkpoint_costs(**ARGS, storage_gbs_per_gpu=0.5)
    assert c["async_block_s"] <= c["sync_block_s"]


def test_blocking_ratio_grows_with_checkpoint_interval_until_flush_hides():
    s1 = D.checkpoint_speedup(**ARGS, storage_gbs_per_gpu=2.0, every=1).value
    s2 = D.checkpoint_speedup(**ARGS, storage_gbs_per_gpu=2.0, every=2).value
    s50 = D.checkpoint_speedup(**ARGS, storage_gbs_per_gpu=2.0, every=50).value
    assert 1.0 <= s1 < s2 and s50 == float("inf")
    # fewer checkpoints: less to gain end to end
    assert D.end_to_end_speedup(**ARGS, storage_gbs_per_gpu=2.0, every=1).value > \
        D.end_to_end_speedup(**ARGS, storage_gbs_per_gpu=2.0, every=20).value >= 1.0


def test_faster_storage_shrinks_the_gain_per_checkpoint():
    slow = D.checkpoint_costs(**ARGS, storage_gbs_per_gpu=0.1)["sync_block_s"]
    fast = D.checkpoint_costs(**ARGS, storage_gbs_per_gpu=10.0)["sync_block_s"]
    assert fast < slow


def test_polaris_layout():
    c = D.polaris(32)
    assert c.per_node == 4 and c.n_nodes == 8
