"""paraplan: plan parallel LLM training and serving before renting a GPU.

The public API is re-exported here lazily, so ``import paraplan`` stays cheap::

    from paraplan import estimate_training, get_model, get_cluster, Strategy, Workload
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from . import errors

__version__ = "0.1.0"

#: public name -> (module, attribute); resolved on first access
_LAZY: dict[str, tuple[str, str]] = {
    "estimate_training": (".train", "estimate_training"),
    "evaluate_training": (".train", "evaluate_training"),
    "Workload": (".train", "Workload"),
    "TrainingEstimate": (".train", "TrainingEstimate"),
    "Strategy": (".strategy", "Strategy"),
    "StrategyArrays": (".strategy", "StrategyArrays"),
    "check_strategy": (".strategy", "check_strategy"),
    "get_model": (".catalog", "get_model"),
    "get_accelerator": (".catalog", "get_accelerator"),
    "get_cluster": (".catalog", "get_cluster"),
    "load_model": (".hf", "load_model"),
    "validate_training": (".validate.train", "validate_training"),
    "ModelSpec": (".specs", "ModelSpec"),
    "AcceleratorSpec": (".specs", "AcceleratorSpec"),
    "ClusterSpec": (".specs", "ClusterSpec"),
    "ParaplanError": (".errors", "ParaplanError"),
    "UnknownNameError": (".errors", "UnknownNameError"),
    "InvalidStrategyError": (".errors", "InvalidStrategyError"),
    "ConfigError": (".errors", "ConfigError"),
    "estimate_inference": (".infer", "estimate_inference"),
    "InferenceConfig": (".infer", "InferenceConfig"),
    "SpeculativeConfig": (".infer", "SpeculativeConfig"),
    "simulate_serving": (".sim", "simulate_serving"),
    "SimConfig": (".sim", "SimConfig"),
    "make_requests": (".sim", "make_requests"),
    "validate_inference": (".validate.infer", "validate_inference"),
    "evaluate_memory": (".train", "evaluate_memory"),
    "estimate_finetune": (".finetune", "estimate_finetune"),
    "FinetuneConfig": (".finetune", "FinetuneConfig"),
    "plan_testtime": (".testtime", "plan_testtime"),
    "run_claims": (".claims", "run_claims"),
    "load_claims": (".claims", "load_claims"),
    "training_sensitivity": (".sensitivity", "sensitivity"),
}

__all__ = [
    "__version__", "errors", "estimate_training", "evaluate_training", "Workload", "TrainingEstimate",
    "Strategy", "StrategyArrays", "check_strategy", "get_model", "get_accelerator", "get_cluster",
    "load_model", "validate_training", "ModelSpec", "AcceleratorSpec", "ClusterSpec", "ParaplanError",
    "UnknownNameError", "InvalidStrategyError", "ConfigError", "estimate_inference", "InferenceConfig",
    "SpeculativeConfig", "simulate_serving", "SimConfig", "make_requests", "validate_inference",
    "evaluate_memory", "estimate_finetune", "FinetuneConfig", "plan_testtime", "run_claims", "load_claims",
    "training_sensitivity",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'paraplan' has no attribute '{name}'")
    module, attr = _LAZY[name]
    value = getattr(import_module(module, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .catalog import get_accelerator, get_cluster, get_model
    from .errors import ConfigError, InvalidStrategyError, ParaplanError, UnknownNameError
    from .hf import load_model
    from .infer import InferenceConfig, SpeculativeConfig, estimate_inference
    from .sim import SimConfig, make_requests, simulate_serving
    from .specs import AcceleratorSpec, ClusterSpec, ModelSpec
    from .strategy import Strategy, StrategyArrays, check_strategy
    from .train import TrainingEstimate, Workload, estimate_training, evaluate_training
    from .validate.infer import validate_inference
    from .validate.train import validate_training
