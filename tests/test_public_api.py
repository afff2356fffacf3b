"""Every name ``paraplan.__all__`` promises resolves (lazily) to a real object."""

from __future__ import annotations

import pytest

import paraplan


@pytest.mark.parametrize("name", [n for n in paraplan.__all__ if n not in ("__version__", "errors")])
def test_public_name_resolves(name: str) -> None:
    assert getattr(paraplan, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        paraplan.no_such_thing  # noqa: B018
