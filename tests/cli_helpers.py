"""Helpers shared by the CLI tests (imported as ``from cli_helpers import ...``: pytest puts tests/ on the path)."""

from __future__ import annotations

from typing import Any

import typer


def assert_user_error(result: Any, *needles: str) -> str:
    """Exit 2, one ``error: ...`` line on stderr, no traceback; returns stderr."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr
    assert "Traceback" not in result.output and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in err, (n, err)
    return err


def calibrate_app() -> typer.Typer:
    """``calibrate`` and ``validate measured`` on their own app (as ``python -m paraplan.cli_calibrate``)."""
    from paraplan.cli_calibrate import register

    app = typer.Typer()
    val = typer.Typer()
    app.add_typer(val, name="validate")
    register(app, None, val)
    return app
