"""Calibration on the user's own hardware, and from the user's own runs (issue 8).

* :func:`paraplan.calibrate.run.calibrate` measures this machine (PyTorch microbenchmarks: GEMM, STREAM,
  attention, collectives; plus probe steps of a small GPT) and returns a profile: an accelerator entry plus
  efficiency curves in the forms of ``catalog/curves/efficiency.yaml`` plus shared training and inference
  parameters, which the existing estimators apply (:func:`load_profile`).
* :func:`paraplan.calibrate.runs.fit_runs` fits the shared training parameters of each accelerator family from
  measured steps (``train-measured.csv`` columns) with leave-one-out error and uncertainty.

Importing this package does not import torch: only measuring needs it (``pip install 'paraplan[calibrate]'``).
"""

from __future__ import annotations

from .device import CalibrationError
from .profile import Profile, load_profile, save_profile

__all__ = ["CalibrationError", "Profile", "load_profile", "save_profile"]
