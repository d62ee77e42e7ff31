"""The base model without training, evaluated as a screening trial evaluates its adapter: the untrained control.

`untrained_payload` is what decides the outcome (model, data, the run's evaluation settings, the device kind) and
`untrained_fingerprint` its hash; `evaluate_untrained` loads the model and scores it on the selection split and on
test with the same code and settings as `screening._final_evaluation` (greedy, strict and flexible extraction, the
gold solution's log-probability), returning plain data so that it can run as a Ray task on any node.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from reward_search.config import ExperimentConfig, from_dict
from reward_search.task.base import DataManifest, Splits
from reward_search.training.spec import KEY_LENGTH, RewardSpec, key_payload

# Raised when what `evaluate_untrained` records changes, so that older cached evaluations are not reused.
UNTRAINED_VERSION = 1


def eval_device(config: ExperimentConfig) -> str:
    """The device kind a trial evaluates on: a Ray trial without GPUs always runs on CPU."""
    return "cpu" if config.search.gpus_per_trial == 0 or config.model.device == "cpu" else "cuda"


def test_only(config: ExperimentConfig) -> bool:
    """Whether the untrained model is evaluated on test alone: a run that selects on test (test is its selection
    split, evaluated once), or `finalize.controls_on_dev: false` (controls are never selected; the baseline and
    the random control skip dev too)."""
    return config.training.selection_split == "test" or not config.finalize.controls_on_dev


def untrained_payload(config: ExperimentConfig, manifest: DataManifest) -> dict[str, Any]:
    """Everything that decides the untrained evaluation: the trial key's model and data, and the run's eval."""
    identity = key_payload(config, RewardSpec(), manifest)
    t = config.training
    evaluation = {
        "selection_split": "test" if test_only(config) else t.selection_split,
        "selection_size": None if test_only(config) else t.selection_size,
        "test_size": _test_size(config),
        "batch_size": t.eval_batch_size,
        "max_new_tokens": t.eval_max_new_tokens,
        "modes": ["strict", "flexible"],
        "generation": "fast" if t.generation == "fast" else "hf",
        "device": eval_device(config),
    }
    model = dict(identity["model"])
    if config.model.spec.startswith("random:"):  # a random-init model's weights come from the seed
        model["seed"] = config.run.seed
    return {"version": UNTRAINED_VERSION, "model": model, "data": identity["data"], "eval": evaluation}


def untrained_fingerprint(config: ExperimentConfig, manifest: DataManifest) -> str:
    """sha256 over the canonical JSON of `untrained_payload`, first 16 hex characters."""
    text = json.dumps(untrained_payload(config, manifest), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_LENGTH]


def _test_size(config: ExperimentConfig) -> int | None:
    """How many test questions the trained jobs are scored on: a run that selects on test scores them on its
    selection questions (`selection_size`, as screening does), every other run on `test_size`."""
    t = config.training
    return t.selection_size if t.selection_split == "test" else t.test_size


def _problems(config: ExperimentConfig, splits: Splits) -> dict[str, Any]:
    """The selection and test questions a finalize job is evaluated on (`test_only`: test alone, once), the same
    questions as the trained jobs', so every row pairs with them question by question."""
    t = config.training
    size = _test_size(config)
    test = splits.test[:size] if size else splits.test
    if test_only(config):
        return {"test": test}
    selection = splits.get(t.selection_split)
    selection = selection[: t.selection_size] if t.selection_size is not None else selection
    return {"selection": selection, "test": test}


def evaluate_untrained(config_data: dict[str, Any]) -> dict[str, Any]:
    """Load the base model where this process was placed and evaluate it on the selection split and on test.

    Returns {"fingerprint", "payload", "device", "seconds", "splits": {name: {"records", "summary"}}}; evaluated
    on test alone (`test_only`), "selection" is the test evaluation itself, as a control's selection records are.
    """
    from reward_search.task import get_task
    from reward_search.training.evaluation import evaluate
    from reward_search.training.models import load_model
    from reward_search.training.placement import trial_placement
    from reward_search.training.trainer import configure_threads, eval_config

    started = time.perf_counter()
    config = from_dict(ExperimentConfig, config_data)
    configure_threads()
    task = get_task(config.data)
    splits = task.load_splits()
    placement = trial_placement(config.model.device)
    loaded = load_model(
        config.model.spec,
        config.model.dtype,
        placement.device,
        seed=config.run.seed,
        quantization=config.model.quantization,
    )
    settings, generation = eval_config(config), config.training.generation
    results = {}
    for name, problems in _problems(config, splits).items():
        result = evaluate(loaded, task, problems, settings, False, generation)
        results[name] = {"records": result.records, "summary": result.summary()}
    results.setdefault("selection", results["test"])
    return {
        "fingerprint": untrained_fingerprint(config, splits.manifest),
        "payload": untrained_payload(config, splits.manifest),
        "device": loaded.device,
        "seconds": round(time.perf_counter() - started, 3),
        "splits": results,
    }
