"""Where the files that ship with shotgraph live: endpoint schemas, templates, data.

In a source checkout (and an editable install) they are the repository's ``schemas/`` and
``templates/``; a wheel bundles the same directories under ``runner/_bundled/``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    bundled = _PACKAGE / "_bundled" / name
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name


@cache
def schemas_dir() -> Path:
    """The directory holding ``pipeline.schema.json`` and ``endpoints/``."""
    return _shipped("schemas")


@cache
def templates_dir() -> Path:
    """The prompt templates that ship with shotgraph."""
    return _shipped("templates")


def data_file(name: str) -> Path:
    """A data file of the package itself (``runner/data/``)."""
    return _PACKAGE / "data" / name
