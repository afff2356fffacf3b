"""Pipeline schedules: bubble and in-flight micro-batches (array-first).

Schedule codes index :data:`paraplan.strategy.SCHEDULES` = (gpipe, 1f1b, interleaved, zero-bubble).

* GPipe and 1F1B (Narayanan et al. 2021, sec. 2.2): bubble = ``(p - 1)`` micro-batch slots, i.e. a
  fraction ``(p - 1) / m`` of the ideal time. GPipe keeps all ``m`` micro-batches' activations;
  1F1B keeps at most ``p - i`` on stage ``i``.
* Interleaved 1F1B with ``v`` model chunks per rank: bubble ``(p - 1) / v`` slots; the first stage holds
  ``p (1 + (p - 1) / (p v))`` micro-batches' worth of its layers' activations (Korthikanti et al. 2022,
  sec. 4.2.3) and ``v`` times more point-to-point messages.
* Zero bubble ZB-H1 (Qi et al. 2024, "Zero Bubble Pipeline Parallelism"): splitting backward into input-
  and weight-gradient passes and filling the bubble with weight-gradient work leaves about one third of
  the 1F1B bubble at the same activation memory as 1F1B.
"""

from __future__ import annotations

import numpy as np

GPIPE, ONE_F_ONE_B, INTERLEAVED, ZERO_BUBBLE = 0, 1, 2, 3

#: Remaining share of the 1F1B bubble under ZB-H1 (Qi et al. 2024, sec. 3: (p-1)(F+B-W) vs (p-1)(F+B+W)
#: with F = B = W).
ZB_H1_BUBBLE_SHARE = 1.0 / 3.0


def bubble_slots(schedule: np.ndarray, pp: np.ndarray, vpp: np.ndarray) -> np.ndarray:
    """Idle time of a stage per step, in units of one micro-batch's forward + backward on that stage."""
    p = np.asarray(pp, dtype=float)
    v = np.maximum(np.asarray(vpp, dtype=float), 1.0)
    base = p - 1.0
    return np.where(schedule == INTERLEAVED, base / v,
                    np.where(schedule == ZERO_BUBBLE, base * ZB_H1_BUBBLE_SHARE, base))


def inflight_microbatches(schedule: np.ndarray, pp: np.ndarray, vpp: np.ndarray, n_micro: np.ndarray,
                          stage: np.ndarray | int = 0) -> np.ndarray:
    """Micro-batches whose activations of this stage's layers are alive at the peak (stage 0 is first)."""
    p = np.asarray(pp, dtype=float)
    v = np.maximum(np.asarray(vpp, dtype=float), 1.0)
    m = np.asarray(n_micro, dtype=float)
    i = np.asarray(stage, dtype=float)
    one_f = np.minimum(p - i, m)
    inter = np.minimum(p * (1.0 + (p - 1.0 - i) / (p * v)) - i, m)
    return np.where(schedule == GPIPE, m, np.where(schedule == INTERLEAVED, inter, one_f))
