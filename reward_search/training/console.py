"""The console summary of a screening trial (`reward-search screen`)."""

from __future__ import annotations

import sys
from typing import Any

from reward_search.training.trial_cache import TrialResult


def print_summary(result: TrialResult, stream: Any = sys.stdout) -> None:
    """A short human summary of a trial."""
    m = result.metrics or {}
    lines = [
        f"trial {result.key}  {result.reward_spec}  status {result.status}"
        + (" (cached)" if result.cached else "")
        + (f"  resumed from step {result.resumed_from_step}" if result.resumed_from_step else ""),
    ]
    if result.error:
        lines.append(f"  reason: {result.error}")
    if m:
        lines.append(
            f"  {result.selection_split}: accuracy {m.get('accuracy', 0):.3f}  F1 {m.get('f1', 0):.3f}  "
            f"extracted {m.get('extraction_rate', 0):.3f}  ({m.get('correct', 0)}/{m.get('n', 0)})  "
            f"gold log-prob {_fmt(m.get('gold_logprob'))}"
        )
    if result.test_metrics:
        lines.append(f"  test: accuracy {result.test_metrics.get('accuracy', 0):.3f}")
    lines.append(
        f"  {result.steps} steps in {result.train_seconds:.1f}s train + {result.eval_seconds:.1f}s eval on "
        f"{result.device or '?'}; {result.tokens_generated} tokens generated"
    )
    summary = result.curve_summary
    lines.append(f"  {'reward':<32} {'start':>8} {'end':>8}")
    for name in result.reward_names:
        curve = summary.get(f"reward/{name}") or {}
        start, end = curve.get("start"), curve.get("end")
        lines.append(f"  {name:<32} {_fmt(start):>8} {_fmt(end):>8}")
    for label in ("zero_std_share", "completion_length"):
        curve = summary.get(label) or {}
        lines.append(f"  {label:<32} {_fmt(curve.get('start')):>8} {_fmt(curve.get('end')):>8}")
    signal = summary.get("signal") or {}
    lines.append(
        f"  learning signal: tied steps {_fmt(signal.get('tied_step_share'))}  "
        f"|advantage| {_fmt(signal.get('mean_abs_advantage'))}  LoRA B norm {signal.get('adapter_norm') or 0:.3g}"
        + (f"  ({signal['no_signal']})" if signal.get("no_signal") else "")
    )
    lines.append(f"  folder: {result.out_dir}")
    print("\n".join(lines), file=stream)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
