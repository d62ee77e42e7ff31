"""Typed experiment configuration: YAML files plus ``--set key=value`` overrides.

Every section is a frozen dataclass whose defaults are the single source of defaults. Loading walks the dataclass
types, so an unknown key or a value of the wrong type is rejected with its dotted path (``eval.batch_size``) and,
for a typo, a suggestion. Later parts of the system add their own sections to `ExperimentConfig`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from reward_search.candidates.settings import CandidatesConfig
from reward_search.errors import ConfigError
from reward_search.proposers.settings import ProposerConfig
from reward_search.training.settings import backend_problem, config_problems


def _positive(**extra: Any) -> dict[str, Any]:
    return {"min": 1, **extra}


@dataclass(frozen=True)
class RunConfig:
    """Where a run lives and its master seed."""

    name: str = "reward-search"
    storage_path: str = "runs"
    seed: int = 3407
    # Checkpoints kept while a trial trains (one stored copy each: Tune's when Tune runs the trial); the newest is
    # what a restarted trial resumes from. Not part of a trial's identity.
    keep_checkpoints: int = field(default=1, metadata=_positive())
    # After a trial ends done: false keeps only its adapter and records (curves, evaluations, result).
    keep_checkpoints_after_trial: bool = False


@dataclass(frozen=True)
class DataConfig:
    """Which task and data source, and how the dev split is carved from train."""

    # The benchmark the sample, local and hub sources hold; `source: jsonl` is a task of its own (task/registry.py).
    task: Literal["gsm8k"] = "gsm8k"
    # The system prompt: `paper` is the reference code's text byte for byte; `project` is this project's wording.
    system_prompt: Literal["paper", "project"] = "project"
    # sample: the GSM8K sample shipped in the package (offline default); local: a folder holding train.jsonl and
    # test.jsonl; hub: a Hugging Face dataset id (or a local dataset repository folder) loaded through `datasets`;
    # jsonl: your own task (not GSM8K) from `train_file`, one {"question", "answer": number} object per line.
    source: Literal["sample", "local", "hub", "jsonl"] = "sample"
    path: str | None = None
    hub_id: str = "openai/gsm8k"
    hub_config: str = "main"
    # Items carved from train for search decisions; None picks 500 for a full set, 50 for the shipped sample.
    dev_size: int | None = field(default=None, metadata={"min": 1})
    dev_seed: int = 1234
    # source jsonl only: the train file (required); test and dev files (optional: carved from train when absent);
    # the name reports and the proposer's prompt call the task (default: the train file's name).
    train_file: str | None = None
    test_file: str | None = None
    dev_file: str | None = None
    name: str | None = None
    # A text file whose content is the policy's system prompt, replacing the task's own (`system_prompt`).
    prompt_file: str | None = None

    def validate(self) -> list[tuple[str, str]]:
        if self.source == "jsonl" and not self.train_file:
            return [("train_file", "required when data.source is 'jsonl' (a JSONL file of question/answer objects)")]
        for key in ("train_file", "test_file", "dev_file", "name"):
            if self.source != "jsonl" and getattr(self, key) is not None:
                return [(key, f"only used with data.source: jsonl (data.source is {self.source!r})")]
        return []


@dataclass(frozen=True)
class ModelConfig:
    """The policy model: `embedded`, `random:<arch>`, a local folder, a .gguf file or a hub id."""

    spec: str = "embedded"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # 4bit: the base model loaded in 4-bit NF4 through bitsandbytes (QLoRA, GPU only; the `gpu` extra).
    quantization: Literal["none", "4bit"] = "none"


@dataclass(frozen=True)
class EvalConfig:
    """Batched greedy evaluation of a model (optionally with a LoRA adapter) on one split."""

    split: Literal["train", "dev", "test"] = "test"
    limit: int | None = field(default=None, metadata={"min": 1})
    batch_size: int = field(default=32, metadata=_positive())
    max_new_tokens: int = field(default=256, metadata=_positive())
    # The extraction mode that decides `correct`; every mode in `modes` is recorded per question. strict is the
    # reference code's rule; lenient also drops `$`, `%` and a trailing `.` (see task/grading.py).
    primary_mode: Literal["strict", "lenient", "flexible", "math-verify"] = "strict"
    modes: tuple[str, ...] = ("strict", "flexible")

    def validate(self) -> list[tuple[str, str]]:
        problems = []
        allowed = ("strict", "lenient", "flexible", "math-verify")
        for mode in self.modes:
            if mode not in allowed:
                problems.append(("modes", f"{mode!r} is not one of {', '.join(allowed)}"))
        return problems


DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    """The LoRA adapter trained in each screening run."""

    r: int = field(default=16, metadata=_positive())
    alpha: int = field(default=32, metadata=_positive())
    dropout: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES


@dataclass(frozen=True)
class TrainingConfig:
    """Every GRPO knob of a screening run, set explicitly and recorded with each trial.

    Defaults suit a short CPU run of a small model; `experiments/paper.yaml` holds the paper's GPU setting.
    """

    lora: LoraSettings = field(default_factory=LoraSettings)
    steps: int = field(default=20, metadata=_positive())
    learning_rate: float = field(default=5e-6, metadata={"min": 0.0})
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = field(default=0.1, metadata={"min": 0.0, "max": 0.99})
    weight_decay: float = field(default=0.1, metadata={"min": 0.0})
    # adamw_8bit needs bitsandbytes and a GPU (the paper's choice); adamw_torch everywhere else.
    optimizer: Literal["adamw_torch", "adamw_8bit", "sgd"] = "adamw_torch"
    max_grad_norm: float = field(default=1.0, metadata={"min": 0.0})
    prompts_per_step: int = field(default=2, metadata=_positive())
    generations_per_prompt: int = field(default=4, metadata={"min": 2})
    gradient_accumulation_steps: int = field(default=1, metadata=_positive())
    # Prompts longer than this many tokens are dropped from the training pool (and counted).
    max_prompt_length: int = field(default=512, metadata=_positive())
    max_completion_length: int = field(default=128, metadata=_positive())
    temperature: float = field(default=1.0, metadata={"min": 0.0})
    top_p: float = field(default=1.0, metadata={"min": 0.0, "max": 1.0})
    # KL coefficient; 0 skips the reference model (TRL's default since DAPO/Dr.GRPO).
    beta: float = field(default=0.0, metadata={"min": 0.0})
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "dapo"
    # How advantages are scaled: by the group's reward std (GRPO), the batch's, or not at all (Dr.GRPO).
    scale_rewards: Literal["group", "batch", "none"] = "group"
    # sum_then_normalize: weighted sum of rewards, then group normalisation (the paper);
    # normalize_then_sum: each reward normalised within its group first, then the weighted sum (GDPO).
    aggregation: Literal["sum_then_normalize", "normalize_then_sum"] = "sum_then_normalize"
    base_rewards: bool = True
    # Adds the graded base reward `graded_answer` (closeness of the last number to the gold, in (0, 1]) to the paper's
    # three, so groups rarely tie when no completion reaches the format (small models; the demo). Not the paper's.
    graded_base_reward: bool = False
    base_weights: dict[str, float] = field(
        default_factory=lambda: {"match_format_exactly": 1.0, "match_format_approximately": 1.0, "check_answer": 1.0}
    )
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # Recompute activations in the backward pass: saves GPU memory on big models, costs time on small ones.
    gradient_checkpointing: bool = False
    # Generate rollouts with vLLM (GPU only; needs the vllm package).
    use_vllm: bool = False
    # Rollout backend (training/generation.py): hf (model.generate), fast (static cache + torch.compile on GPU),
    # vllm (TRL colocate, memory scaled to search.gpus_per_trial; the `vllm` extra).
    generation: Literal["hf", "fast", "vllm"] = "hf"
    # Every `report_every` steps: a checkpoint and an accuracy on `report_eval_size` dev questions (Tune reports).
    report_every: int = field(default=10, metadata=_positive())
    report_eval_size: int = field(default=8, metadata=_positive())
    # Search decisions use `selection_split` (dev; `test` only for the paper-fidelity mode, and it says so).
    selection_split: Literal["dev", "test"] = "dev"
    selection_size: int | None = field(default=None, metadata=_positive())
    eval_test: bool = False
    # Test items evaluated when eval_test is on (finalize); None: the whole test split.
    test_size: int | None = field(default=None, metadata=_positive())
    eval_max_new_tokens: int = field(default=256, metadata=_positive())
    eval_batch_size: int = field(default=32, metadata=_positive())
    # A candidate reward whose sandboxed call fails: `crash` masks the batch and ends the trial after
    # candidates.max_failed_calls failures (screening); `zero` scores the batch 0, records it and restarts the
    # worker (ensemble members in the finalize phase, as the reference did).
    member_failure: Literal["crash", "zero"] = "crash"

    def validate(self) -> list[tuple[str, str]]:
        problems = []
        known = ("match_format_exactly", "match_format_approximately", "check_answer", "graded_answer")
        for name in self.base_weights:
            if name not in known:
                problems.append(("base_weights", f"{name!r} is not a base reward (known: {', '.join(known)})"))
        if self.optimizer == "adamw_8bit" and self.precision == "fp32":
            problems.append(("optimizer", "adamw_8bit needs a GPU; use adamw_torch for fp32/CPU runs"))
        backend = "vllm" if self.use_vllm else self.generation
        if self.use_vllm and self.generation == "fast":
            problems.append(("use_vllm", "true contradicts generation: fast; set generation: vllm instead"))
        elif backend != "hf" and (problem := backend_problem(backend)):
            problems.append(("use_vllm" if self.use_vllm else "generation", problem))
        return problems


@dataclass(frozen=True)
class PrescreenConfig:
    """The zero-training pre-screen (candidates/prescreen.py): what a candidate does on the rollout bank."""

    # The cascade policy (search/cascade.py). off: no decision; record: computed and shown (feedback, records,
    # report), a "would skip" noted in the reasons, every validated candidate trained; order: each round's accepted
    # candidates screened most promising first (AUC, then own_signal), and one that behaves like a candidate already
    # screened or queued (signature rank correlation >= novelty) skipped, never trained; filter: as order, and one
    # with AUC < min_auc or own_signal < min_signal skipped too. Planted controls are never skipped.
    mode: Literal["off", "record", "order", "filter"] = "record"
    min_auc: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})  # filter: below it, skipped
    # filter: the least share of bank groups where the candidate alone varies (own_signal; the total signal is
    # 100% on the shipped bank, where the base rewards alone vary in every group)
    min_signal: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    novelty: float = field(default=0.99, metadata={"min": 0.0, "max": 1.0})  # rank correlation of "behaves like"


@dataclass(frozen=True)
class SearchConfig:
    """Rounds, trial resources, concurrency, retries, early stopping and budgets of a search."""

    rounds: int = field(default=5, metadata=_positive())
    candidates_per_round: int = field(default=10, metadata=_positive())
    # barrier: round r+1 is proposed when round r's trials are done (the paper); async: as soon as r is handed out;
    # steady: a batch whenever slots would idle, conditioned on every finished result (budget rounds x per_round).
    mode: Literal["barrier", "async", "steady"] = "barrier"
    # steady: candidates proposed ahead of a free slot, i.e. trials that may start without the latest results.
    max_staleness: int = field(default=0, metadata={"min": 0})
    # The fraction of the cluster's trial slots one search may hold (running + pending); None: all of a local Ray
    # the driver started, half of an existing cluster. search.max_concurrent_trials, when set, wins.
    cluster_share: float | None = field(default=None, metadata={"min": 0.01, "max": 1.0})
    driver_cpus: float = field(default=1.0, metadata={"min": 0.0})  # CPUs of an existing cluster left to the driver
    cpus_per_trial: float = field(default=1.0, metadata={"min": 0.0})
    gpus_per_trial: float = field(default=0.0, metadata={"min": 0.0})  # fractions share a GPU
    # Training processes per trial (Ray Train workers, DDP); None: gpus_per_trial when it is 2 or more, else 1.
    # 2 with gpus_per_trial 0 runs DDP over gloo on CPU (tests).
    train_workers: int | None = field(default=None, metadata=_positive())
    max_concurrent_trials: int | None = field(default=None, metadata=_positive())
    max_failures: int = field(default=2, metadata={"min": 0})  # Tune retries of a trial's infrastructure failures
    asha: bool = False  # stop weak candidates early on their intermediate dev accuracy
    asha_grace_period: int = field(default=1, metadata=_positive())  # in training steps
    # Rejected proposals are replaced by new ones, up to this many proposer calls per round.
    max_proposal_attempts: int = field(default=4, metadata=_positive())
    budget_gpu_hours: float | None = field(default=None, metadata={"min": 0.0})
    budget_usd: float | None = field(default=None, metadata={"min": 0.0})
    max_candidates: int | None = field(default=None, metadata=_positive())
    dashboard: bool = True  # start Ray's dashboard with a local cluster
    prescreen: PrescreenConfig = field(default_factory=PrescreenConfig)


@dataclass(frozen=True)
class RecipeConfig:
    """One ensemble recipe of the finalize phase: which screened rewards train together, and for how long."""

    name: str
    # top_k: the k best by selection accuracy; diverse: the best of each round; correctness: the k top-2k
    # candidates whose probes separated correct from wrong answers most.
    kind: Literal["top_k", "diverse", "correctness"] = "top_k"
    k: int = field(default=5, metadata=_positive())
    full_budget: bool = False  # train for training.steps (the screening budget) instead of finalize.steps


DEFAULT_RECIPES = (
    RecipeConfig("top3", "top_k", 3),
    RecipeConfig("top5", "top_k", 5),
    RecipeConfig("top5_full", "top_k", 5, full_budget=True),
    RecipeConfig("top7", "top_k", 7),
    RecipeConfig("top10", "top_k", 10),
    RecipeConfig("diverse", "diverse", 5),
    RecipeConfig("correctness", "correctness", 5),
)


@dataclass(frozen=True)
class FinalizeConfig:
    """The phase after the rounds: ensembles, a base-only baseline, a random control, seeds; then test once."""

    enabled: bool = True  # run automatically after the last round
    steps: int | None = field(default=None, metadata=_positive())  # ensemble training steps; None: training.steps
    recipes: tuple[RecipeConfig, ...] = DEFAULT_RECIPES
    baseline: bool = True
    random_control: bool = True
    random_k: int = field(default=5, metadata=_positive())
    random_seed: int = 0
    seeds: int = field(default=3, metadata=_positive())  # trainings of the best recipe (run.seed, +1, ...)
    # The baseline and the random control never compete for best recipe; false evaluates them on test only
    # (their dev columns show "-"), which saves one dev evaluation per control.
    controls_on_dev: bool = True
    # The base model without training, evaluated on the selection split and test under the run's eval settings
    # (once per model, data and eval fingerprint, cached): the `untrained` row beside the baseline.
    untrained: bool = True

    def validate(self) -> list[tuple[str, str]]:
        names = [r.name for r in self.recipes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        return [("recipes", f"duplicate recipe names: {', '.join(duplicates)}")] if duplicates else []


@dataclass(frozen=True)
class AnalysisConfig:
    """How the report tests the finalize configurations against each other."""

    # paper: the 7 ensemble recipes only, chi-square with continuity correction, Bonferroni (the reference);
    # exact: every configuration (recipes, baseline, random control), exact binomial below `exact_threshold`
    # discordant pairs, Holm (Bonferroni also shown).
    mcnemar: Literal["paper", "exact"] = "exact"
    exact_threshold: int = field(default=25, metadata={"min": 0})
    alpha: float = field(default=0.05, metadata={"min": 0.0, "max": 1.0})


@dataclass(frozen=True)
class SelectionConfig:
    """Which key ranks candidates first (the ranking rule is records.rank_entries)."""

    # accuracy: selection accuracy, then the gold solution's log-probability, then candidate id; gold_logprob: the
    # graded signal first (small runs where accuracy cannot move), then accuracy, then candidate id.
    metric: Literal["accuracy", "gold_logprob"] = "accuracy"


@dataclass(frozen=True)
class TrackingConfig:
    """Experiment tracking (optional extra): each screening trial a run nested under the search's run."""

    kind: Literal["none", "mlflow", "wandb"] = "none"
    # MLflow: a tracking URI (a local folder or file: URI is a file store; http(s):// a server); None: ./mlruns
    # under the run directory. W&B: ignored (offline mode writes under the run directory).
    uri: str | None = None
    experiment: str | None = None  # None: the run name
    project: str | None = None  # W&B project; None: the run name


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: every knob, with its default, in one place."""

    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    candidates: CandidatesConfig = field(default_factory=CandidatesConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    proposer: ProposerConfig = field(default_factory=ProposerConfig)
    finalize: FinalizeConfig = field(default_factory=FinalizeConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def validate(self) -> list[tuple[str, str]]:
        """Combinations of sections that cannot work together, each naming both keys."""
        if self.training.selection_split == "test" and not self.training.eval_test:
            return [
                (
                    "training.selection_split",
                    "'test' (ranking on test, as the paper did) needs training.eval_test: true so that every trial "
                    "writes its test records; set training.eval_test: true or training.selection_split: dev",
                )
            ]
        return config_problems(self)  # impossible placements: CUDA without GPUs, bitsandbytes on CPU, ...

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


# --------------------------------------------------------------------------------------------------- loading


def to_plain(value: Any) -> Any:
    """A dataclass tree as plain dicts/lists, suitable for YAML and JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    return value


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """`value` checked and converted to type `tp`; raises ConfigError naming `where`."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping of fields, got {value!r}")
        return from_dict(tp, value, where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not {_type_name(tp)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        item_type = typing.get_args(tp)[0]
        return tuple(_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_type, value_type = typing.get_args(tp)
        return {_convert(k, key_type, where): _convert(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-5` (no dot) as a string; accept it as the number it is
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {tp!r}")  # a bug in a config class, not user input


def from_dict(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from `data`, rejecting unknown keys and bad values with their dotted paths."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean '{prefix + '.' if prefix else ''}{close[0]}'?" if close else ""
            raise ConfigError(f"{where}: unknown key{hint} (known: {', '.join(fields)})")
        converted = _convert(value, hints[key], where)
        meta = fields[key].metadata
        if isinstance(converted, int | float) and not isinstance(converted, bool):
            if "min" in meta and converted < meta["min"]:
                raise ConfigError(f"{where}: must be at least {meta['min']}, got {converted!r}")
            if "max" in meta and converted > meta["max"]:
                raise ConfigError(f"{where}: must be at most {meta['max']}, got {converted!r}")
        kwargs[key] = converted
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and name not in kwargs:
            raise ConfigError(f"{prefix + '.' if prefix else ''}{name}: required")
    instance = cls(**kwargs)
    validate = getattr(instance, "validate", None)
    if callable(validate):
        for name, message in validate():
            raise ConfigError(f"{prefix + '.' if prefix else ''}{name}: {message}")
    return instance


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value` as (['a', 'b'], value), the value parsed as YAML (so `3`, `true`, `null`, `[a, b]` work)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set eval.limit=20")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: the key must be a dotted field path, e.g. eval.limit")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of `data` with each `key=value` override set at its dotted path."""
    result: dict[str, Any] = _deep_copy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = result
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(parts[: i + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file; ConfigError naming the file (and line) when it is missing, empty or malformed."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not an experiment file")
    if not path.is_file():
        raise ConfigError(f"{path}: experiment file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the experiment file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{line}: {problem}") from None
    if data is None:
        raise ConfigError(f"{path}: the experiment file is empty (no sections); see experiments/ for examples")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def _blamed_override(message: str, overrides: Sequence[str]) -> str | None:
    """The `--set` override that set the field a ConfigError message starts with (the last one wins), or None."""
    field = message.split(":", 1)[0].strip()
    for text in reversed(overrides):
        key = text.split("=", 1)[0].strip()
        if field == key or field.startswith(key + ".") or key.startswith(field + "."):
            return text
    return None


def load_config(
    path: str | Path | None = None, overrides: Sequence[str] = (), labels: Mapping[str, str] | None = None
) -> ExperimentConfig:
    """The experiment config from an optional YAML file and `--set` overrides, fully validated.

    A bad value is blamed on its source: the override that set that field (`--set KEY=VALUE`, or its entry in
    `labels`, e.g. `--limit 0` for a command's own flag), else the file.
    """
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    try:
        return from_dict(ExperimentConfig, data)
    except ConfigError as exc:
        override = _blamed_override(str(exc), overrides)
        if override is not None:
            raise ConfigError(f"{(labels or {}).get(override, f'--set {override}')}: {exc}") from None
        source = f"{path}: " if path is not None else ""
        raise ConfigError(f"{source}{exc}") from None


def add_config_args(parser: Any, required: bool = False) -> None:
    """A command's config arguments: the experiment YAML file and any number of `--set KEY=VALUE` overrides."""
    parser.add_argument(
        "experiment", nargs=None if required else "?", help="experiment YAML file (defaults apply without one)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field by its dotted path, e.g. --set eval.limit=20 (repeatable)",
    )


def config_from_args(args: Any, extra: Sequence[str] = (), labels: Mapping[str, str] | None = None) -> ExperimentConfig:
    """The config that `add_config_args`'s arguments name, with `extra` overrides applied after `--set` (`labels`
    names the flag each came from, for errors)."""
    return load_config(args.experiment, [*args.overrides, *extra], labels)


def dump_config(config: ExperimentConfig) -> str:
    """The resolved config as YAML text (loadable again by `load_config`)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


# Keys `reward-search resume --set` may change: resources, concurrency and budgets, which never change what a trial
# computes (the trial key hashes the rest), so nothing finished is retrained.
RESUME_KEYS: tuple[str, ...] = (
    "search.max_concurrent_trials",
    "search.cluster_share",
    "search.driver_cpus",
    "search.gpus_per_trial",
    "search.cpus_per_trial",
    "search.max_failures",
    "search.max_staleness",
    "search.rounds",
    "search.budget_gpu_hours",
    "search.budget_usd",
    "search.max_candidates",
    "search.dashboard",
)


def changed_keys(old: ExperimentConfig, new: ExperimentConfig) -> list[str]:
    """The dotted paths of the leaf fields whose values differ between two configs."""

    def flat(data: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(data, dict):
            out: dict[str, Any] = {}
            for key, value in data.items():
                out.update(flat(value, f"{prefix}{key}."))
            return out
        return {prefix[:-1]: data}

    a, b = flat(old.to_dict()), flat(new.to_dict())
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
