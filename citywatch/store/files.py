"""Files that database rows point to (face crops, probes, enrolled images), kept under the
data directory and stored in rows by their path relative to it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def write_file(root: Path, rel: str, data: bytes) -> str:
    """Write `data` to root/rel whole or not at all (temp file, then rename); returns rel."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return rel


def remove_file(root: Path, rel: str | None) -> None:
    """Delete root/rel if it is there; never a path outside root."""
    if not rel:
        return
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        log.warning("not deleting %s: outside the data directory", path)
        return
    path.unlink(missing_ok=True)
