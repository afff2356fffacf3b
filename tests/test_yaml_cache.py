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


def test_a_broken_user_file_is_one_clear_error_on_every_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from paraplan.cli import app
    from paraplan.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        _yaml.read_user_file(bad, ConfigError)
    with pytest.raises(FileNotFoundError):
        _yaml.read_user_file(tmp_path / "missing.yaml", ConfigError)
    for args in (["train", "--model", str(bad), "--cluster", "h100-sxm:1"],
                 ["testtime", "-c", "h100-sxm:1", "--curve", str(bad)],
                 ["sweep", "--config", str(bad), "--out", str(tmp_path / "r.csv")]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2 and "not valid YAML" in res.output, (args, res.output)
