from paraplan.techniques import pararnn as P


def test_parallel_beats_sequential_and_gap_grows_with_small_batch():
    assert P.log10_speedup(4096, 8, 2048).value > 1.0
    assert P.log10_speedup(4096, 1, 1024).details["speedup"] > P.log10_speedup(4096, 64, 4096).details["speedup"]


def test_sequential_linear_in_length():
    a = P.sequential_time(1000, 1, 256)
    b = P.sequential_time(2000, 1, 256)
    assert abs(b / a - 2.0) < 1e-9


def test_more_newton_iterations_cost_more():
    assert P.parallel_time(4096, 8, 1024, newton_iters=5) > P.parallel_time(4096, 8, 1024, newton_iters=3)
