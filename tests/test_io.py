"""Atomic writes and the clean-up of what a killed writer leaves behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from reward_search import io


def test_a_writer_killed_mid_write_leaves_the_old_file_whole_and_a_temp_that_is_removed(tmp_path):
    target = tmp_path / "error.log"
    io.write_text(target, "old\n")
    writer = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from reward_search import io\n"
        "def slow(tmp):\n"
        "    tmp.write_text('half')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        f"io._atomic(Path({str(target)!r}), slow)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / ".nested.tmp").write_text("not this folder's")
    temps = [p.name for p in tmp_path.glob(".error.log.*.tmp")]
    assert target.read_text() == "old\n" and len(temps) == 1  # the old file is whole; the temp stayed
    assert io.remove_stale_temps(tmp_path) == temps
    assert not list(tmp_path.glob(".*.tmp")) and (tmp_path / "keep" / ".nested.tmp").is_file()
    assert target.read_text() == "old\n" and io.remove_stale_temps(tmp_path / "missing") == []
