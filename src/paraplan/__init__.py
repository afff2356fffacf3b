"""paraplan: plan parallel LLM training and serving before renting a GPU."""

from __future__ import annotations

__version__ = "0.1.0"
