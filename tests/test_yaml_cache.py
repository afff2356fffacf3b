"""The per-user cache of parsed YAML documents returns exactly what parsing returns, never a stale entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from paraplan import _yaml

DOC = "a: 1\nb: [x, 2.5, null, true]\nc: {d: e}\n"


def test_cache_hit_equals_a_fresh_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARAPLAN_CACHE_DIR", str(tmp_path))
    first = _yaml.load_text(DOC)
    assert list(tmp_path.glob("*.marshal"))  # written
    assert _yaml.load_text(DOC) == first == _yaml.parse(DOC)


def test_an_edited_file_is_never_served_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARAPLAN_CACHE_DIR", str(tmp_path))
    _yaml.load_text(DOC)
    assert _yaml.load_text(DOC.replace("1", "7"))["a"] == 7


def test_corrupt_entry_and_unwritable_or_disabled_cache_fall_back_to_parsing(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARAPLAN_CACHE_DIR", str(tmp_path))
    _yaml.load_text(DOC)
    for f in tmp_path.glob("*.marshal"):
        f.write_bytes(b"\x00garbage")
    assert _yaml.load_text(DOC) == _yaml.parse(DOC)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PARAPLAN_CACHE_DIR", str(blocker / "sub"))
    assert _yaml.load_text(DOC) == _yaml.parse(DOC)
    monkeypatch.setenv("PARAPLAN_CACHE_DIR", "off")
    assert _yaml.load_text(DOC) == _yaml.parse(DOC)


def test_documents_marshal_cannot_hold_are_parsed_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARAPLAN_CACHE_DIR", str(tmp_path))
    doc = _yaml.load_text("when: 2026-11-27\n")
    assert str(doc["when"]) == "2026-11-27"
    assert not list(tmp_path.glob("*.marshal"))
