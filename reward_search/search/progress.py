"""What a person watching a search sees: one line per trial event, and the leaderboard table."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from ray.tune import Callback

from reward_search.candidates.escape import shown
from reward_search.candidates.records import LeaderboardEntry, rank_entries, rank_labels
from reward_search.search.cascade import skipped_note


def _label(trial: Any) -> str:
    """`round r: candidate` for search trials, `finalize: job` for finalize trials."""
    config = trial.config or {}
    job = config.get("job")
    if isinstance(job, dict):
        return f"finalize: {job.get('job_name', 'job')}"
    return f"round {config.get('round')}: {config.get('candidate')}"


class SearchProgress(Callback):
    """Prints trial starts and results as they happen (Tune's own table is switched off)."""

    def __init__(self, verbose: bool = True, metrics: Any = None) -> None:
        self.verbose, self.metrics = verbose, metrics
        self.started = time.time()
        self.finished = 0

    def _say(self, text: str) -> None:
        if self.verbose:
            seconds = int(time.time() - self.started)
            print(f"[{seconds // 60:3d}m{seconds % 60:02d}s] {text}", file=sys.stderr, flush=True)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.metrics:
            self.metrics.trial_started()
        self._say(f"{_label(trial)} started")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if not result.get("final") and result.get("dev_accuracy") is not None:
            self._say(
                f"  {_label(trial)}: step {result.get('step')}, "
                f"dev accuracy {result['dev_accuracy']:.3f} on the report subset"
            )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.finished += 1
        result = trial.last_result or {}
        if self.metrics:
            self.metrics.trial_finished(str(result.get("status", "failed")))
            if result.get("status") == "done" and isinstance(result.get("selection_accuracy"), float):
                self.metrics.best(result["selection_accuracy"])
        accuracy = result.get("selection_accuracy")
        score = f"selection accuracy {accuracy:.3f}" if isinstance(accuracy, float) else ""
        cached = " (cached)" if result.get("cached") else ""
        test = result.get("test_accuracy")
        if isinstance(test, float):
            score += f", test accuracy {test:.3f}"
        self._say(f"{_label(trial)} {result.get('status', '?')}{cached} {score}".rstrip())

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.metrics:
            self.metrics.trial_finished("error")
        self._say(f"{_label(trial)} errored (infrastructure; Tune retries it while search.max_failures allows)")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _no_signal(entry: LeaderboardEntry) -> str | None:
    signal = (entry.curve_summary or {}).get("signal")
    return signal.get("no_signal") if isinstance(signal, dict) else None


def status_label(entry: LeaderboardEntry) -> str:
    """The status as the tables show it: a trial ASHA stopped shows the step it reached (`stopped@3`)."""
    if entry.status == "stopped" and entry.steps is not None:
        return f"stopped@{entry.steps}"
    return str(entry.status)


def leaderboard_table(entries: Sequence[LeaderboardEntry], limit: int = 20, metric: str = "accuracy") -> str:
    """Ranked screened candidates (`=` marks a genuine tie), then the others by status: what `run` and `status`
    print. Gold LP is the mean per-token log-probability of the gold solutions; a run that learned nothing says so."""
    done = rank_entries(entries, metric)
    labels = rank_labels(done, metric)
    lines = [
        f"ranked by {metric}, then {'gold log-prob' if metric == 'accuracy' else 'accuracy'}, then candidate id",
        f"{'#':>4} {'name':<34} {'round':>5} {'accuracy':>9} {'95% CI':>15} {'gold LP':>8} {'status':<9}",
    ]
    for label, e in zip(labels[:limit], done[:limit], strict=True):
        ci = f"[{_fmt(e.ci_low, 2)}, {_fmt(e.ci_high, 2)}]"
        reason = _no_signal(e)
        lines.append(
            f"{label:>4} {e.name[:34]:<34} {e.round:>5} {_fmt(e.accuracy):>9} {ci:>15} {_fmt(e.gold_logprob, 4):>8} "
            f"{e.status:<9}" + (f" {reason[:70]}" if reason else "")
        )
    others = [e for e in entries if e not in done]
    for e in sorted(others, key=lambda e: (e.round, e.status, e.name)):
        reason = shown(e.reasons[-1] if e.reasons else "", 60)  # candidate-controlled text, escaped
        if (like := skipped_note(e, entries)) is not None:  # skipped by the cascade: the result of the one it is like
            reason = shown(e.reasons[-1].removeprefix("skipped, not trained: "), 90) + f" [{shown(like, 60)}]"
        lines.append(f"{'':>4} {e.name[:34]:<34} {e.round:>5} {'':>9} {'':>15} {'':>8} {status_label(e):<9} {reason}")
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    lines.append("candidates: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    return "\n".join(lines)


def print_leaderboard(
    entries: Sequence[LeaderboardEntry], stream: TextIO | None = None, metric: str = "accuracy"
) -> None:
    print(leaderboard_table(entries, metric=metric), file=stream or sys.stdout)
