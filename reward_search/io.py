"""Atomic file writes: a crash mid-write leaves the old file or the new one, never half of either."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reward_search.errors import DiskFull, disk_full_line

TEMP_SUFFIX = ".tmp"  # an atomic write's temp file: ".<name>.<random>.tmp" beside its target


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(disk_full_line(str(path))) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_stale_temps(folder: str | Path) -> list[str]:
    """Delete the temp files of atomic writes that a killed process left in `folder` (not below it); their names.

    Call it only where no live process is writing to `folder` (a trial's folder when its attempt starts).
    """
    stale = [p for p in Path(folder).glob(f".*{TEMP_SUFFIX}") if p.is_file()]  # a missing folder has none
    for path in stale:
        path.unlink(missing_ok=True)
    return sorted(p.name for p in stale)


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically."""
    return _atomic(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    """Write `data` as indented JSON atomically."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_parquet(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write rows (dicts with the same keys) as a Parquet file atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([dict(r) for r in rows])
    return _atomic(Path(path), lambda tmp: pq.write_table(table, tmp))
