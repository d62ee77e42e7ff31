"""An append-only JSON-lines log of leaderboard events: one line per change, so an update costs the same at 10
candidates as at 10,000. A line torn by a crash (the last one) is ignored on read; `reset` empties the log after
its events have been compacted into the Parquet snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from reward_search import io


class EventLog:
    """Events as dicts `{"id", "op", "cid", "data"}`, appended and flushed one line at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def read(self) -> Iterator[dict[str, Any]]:
        """Every complete event in order; a malformed final line (a crash mid-write) is skipped."""
        if not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    return  # torn last line: the change it described was never acknowledged
                raise ValueError(f"{self.path}: line {number} is not JSON") from None

    def append(self, event: dict[str, Any]) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(json.dumps(event, default=str, separators=(",", ":")) + "\n")
        self._handle.flush()

    def reset(self) -> None:
        """Empty the log (its events are now in the snapshot)."""
        self.close()
        io.write_text(self.path, "")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
