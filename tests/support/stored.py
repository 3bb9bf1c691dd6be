"""Everything a running stack has stored on disk, for the tests that search it for secrets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def stored_files(root: Path) -> Iterator[tuple[Path, bytes]]:
    """Every file under `root` with its content. A file that disappears between listing and
    reading (ClickHouse merging parts, NATS compacting) is skipped: its content lives on in the
    file that replaced it, which the walk reads too, or the merge happened before it listed."""
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        try:
            yield path, path.read_bytes()
        except FileNotFoundError:
            continue
