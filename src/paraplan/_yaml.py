"""Loading the package's YAML data fast: libyaml when available, and a per-user cache of the parsed documents.

Parsing YAML is most of paraplan's start-up (the catalog and the fitted curves: ~0.3 s in pure Python). The
parsed document of each file is kept in ``$PARAPLAN_CACHE_DIR`` (default ``$XDG_CACHE_HOME/paraplan`` or
``~/.cache/paraplan``) as a :mod:`marshal` blob named by the hash of the file's text and the Python version, so
an edited file or another interpreter never reads a stale entry. ``PARAPLAN_CACHE_DIR=off`` disables it; a
cache that cannot be written (read-only home, CI sandbox) is skipped silently. Documents marshal cannot hold
(e.g. YAML dates) are simply not cached.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _cache_dir() -> Path | None:
    env = os.environ.get("PARAPLAN_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "paraplan"


def parse(text: str) -> Any:
    """``yaml.safe_load`` semantics (libyaml's parser when installed), no cache."""
    return yaml.load(text, Loader=_LOADER)


def read_user_file(path: str | Path, error: type[Exception], max_chars: int | None = None) -> Any:
    """A user's YAML file (a sweep, a profile, a curve, a model): FileNotFoundError when it is missing, ``error``
    with one line naming the file when it is not valid YAML (the parser's message, cut at ``max_chars``)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(2, "No such file or directory", str(p))
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{p}: not valid YAML ({' '.join(str(exc).split())[:max_chars]})") from None


def load_text(text: str) -> Any:
    """Parse YAML ``text``, through the per-user cache of parsed documents."""
    d = _cache_dir()
    if d is None:
        return parse(text)
    key = hashlib.sha1(f"{sys.version}\0{marshal.version}\0{text}".encode()).hexdigest()
    path = d / f"{key}.marshal"
    try:
        return marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        pass
    doc = parse(text)
    try:
        blob = marshal.dumps(doc)
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass
    return doc
