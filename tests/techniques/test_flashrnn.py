from paraplan.techniques import flashrnn as FR


def test_bound_above_one_and_shrinks_when_compute_bound():
    small = FR.speedup_bound(256, 4).value
    big = FR.speedup_bound(4096, 1024).value
    assert small > 1.0 and big < small


def test_flash_step_never_slower():
    r = FR.step_times(1024, 16)
    assert r["flash_s"] <= r["vanilla_s"]
