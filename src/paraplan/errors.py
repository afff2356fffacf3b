"""User-facing errors: the CLI turns these into one-line messages and exit code 2."""

from __future__ import annotations


class ParaplanError(Exception):
    """Base class of errors caused by user input (never a bug)."""


class UnknownNameError(ParaplanError, KeyError):
    def __init__(self, kind: str, name: str, suggestions: list[str] | None = None) -> None:
        self.kind, self.name, self.suggestions = kind, name, list(suggestions or [])
        hint = f"; did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown {kind} '{name}'{hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class InvalidStrategyError(ParaplanError, ValueError):
    """A strategy breaks a legality rule; ``rule`` names it, the message gives the values."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(f"invalid strategy [{rule}]: {message}")


class ConfigError(ParaplanError, ValueError):
    """A model config (e.g. a Hugging Face config.json) is missing keys or malformed."""
