"""Ray's memory monitor killing a run's workers ends the command in one line with its own exit status."""

from __future__ import annotations

import argparse

import pytest

from reward_search import cli
from reward_search.errors import OUT_OF_MEMORY_EXIT, out_of_memory_line

# The error `reward-search run` died with when Ray's memory monitor killed a trial and the leaderboard actor on a
# 24 GiB host (benchmarks/search_quality.py on the story task, 2026-12-08), as Tune re-raised it, first lines.
RAY_OOM = (
    "Caught unexpected exception: 2 worker(s) were killed due to the node running low on memory. Memory on the "
    "node (IP: 192.0.2.2, ID: e31c9bf4860efefa026682d8b7774a2be4cbd70fb4b9607c1921a94e) was 22.35GB used / "
    "23.54GB limit (0.949648)\nOOM kill reason: Memory usage 24026361856B exceeded threshold of 24012374016B "
    "(95.0% of 25276182528B limit)\nObject store memory usage: [- objects spillable: 0\n"
)


def test_the_line_names_the_memory_and_the_way_on():
    line = out_of_memory_line(RAY_OOM)
    assert line is not None and "\n" not in line
    assert "22.35GB used / 23.54GB limit" in line and "search.max_concurrent_trials" in line
    assert "reward-search resume RUN_DIR" in line
    assert out_of_memory_line("RuntimeError: a trial failed for another reason") is None


def test_the_cli_prints_one_line_and_exits_with_enomem(monkeypatch, capsys):
    def crashing(args: argparse.Namespace) -> int:
        raise RuntimeError(RAY_OOM) from MemoryError()

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(handler=crashing)
    assert cli.main([]) == OUT_OF_MEMORY_EXIT == 12
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reward-search: error: Ray killed workers")


def test_other_errors_still_raise(monkeypatch):
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(handler=lambda args: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main([])
