"""ASHA on a screening trial's checkpoint reports (`search.asha`), the only reports that carry a dev accuracy on the
report subset.

Tune's `ASHAScheduler` reads every report. A screening trial's final report is not one to compare at a rung (its
`dev_accuracy` is the whole selection split's, or None for a failed trial, which ASHA cannot multiply), and a run
with `training.report_eval_size: 0` reports no dev accuracy at all, which Tune's strict metric check turns into an
error that ends the whole search. This scheduler compares checkpoint reports only, lets every other report pass,
and tells Tune it has no metric of its own to require. A trial it stops (`stopped`) is recorded `stopped` at its
step (`searcher.fields_from_result`); any other trial that ends without a final report is `failed`.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import ASHAScheduler, TrialScheduler


class CheckpointASHA(ASHAScheduler):
    """ASHA over checkpoint reports with a dev accuracy; final reports and reports without one pass unjudged.
    `stopped` holds the ids of the trials it stopped (the searcher records those as `stopped`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopped: set[str] = set()

    @property
    def metric(self) -> str | None:
        return None  # Tune's strict check would require `dev_accuracy` in every report, final ones included

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result.get("final") or result.get(self._metric) is None:
            return TrialScheduler.CONTINUE
        action = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP:
            self.stopped.add(trial.trial_id)
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        self._trial_info.pop(trial.trial_id, None)  # its checkpoint reports are already in the rungs

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._trial_info.pop(trial.trial_id, None)
