"""Test utilities that need PyTorch (the ``paraplan[calibrate]`` extra).

:mod:`paraplan.testing.gpt` is a small GPT in plain PyTorch (token and position embeddings, pre-norm
attention + MLP blocks, LM head, AdamW on fp32 master weights, optional activation checkpointing, a KV cache
for prefill and decode). ``paraplan validate measured`` times its steps and compares them with paraplan's
predictions for the same architecture (:func:`paraplan.testing.gpt.GPTConfig.model_spec`).

Importing this package does not import torch; importing :mod:`paraplan.testing.gpt` does.
"""
