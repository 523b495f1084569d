"""Where each value of a loaded YAML document came from: key paths back to file and line.

Apart from the reader (``yamlsrc``), so that records that carry one (and the compile memo
that reads them back) need no YAML library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.errors import KeyPath, Location

# (line of the key or item, line of its value), 1-based, by key or index.
Lines = dict[str | int, tuple[int, int]]


class SourceMap:
    """Maps key paths of a loaded document back to lines of its file."""

    def __init__(
        self,
        file: Path | None,
        root: Any = None,
        lines: dict[int, Lines] | None = None,
        values: int = 0,
    ) -> None:
        self.file = file
        self._root = root
        self._lines = lines or {}
        self.values = values  # how many values the document holds (aliases expanded)

    @property
    def root(self) -> Any:
        """The document mapped."""
        return self._root

    @property
    def lines(self) -> dict[int, Lines]:
        """The lines of each container of the document, by its ``id()``."""
        return self._lines

    def locate(self, path: KeyPath, *, key: bool = False) -> Location:
        """The line of the value at ``path`` (or of its key with ``key=True``).

        When the path goes further than the document (a missing key), the deepest existing
        value's line is used.
        """
        node = self._root
        line = 1 if node is not None else None
        for i, part in enumerate(path):
            lines = self._lines.get(id(node))
            if lines is None or part not in lines:
                break
            key_line, value_line = lines[part]
            line = key_line if key and i == len(path) - 1 else value_line
            node = node[part]
        return Location(self.file, line, tuple(path))
