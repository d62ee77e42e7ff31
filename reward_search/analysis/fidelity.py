"""The fidelity table: every knob where this project may differ from the paper's reference code.

Each `Knob` names a config key (a dotted path), the value the reference code used, and why this project offers
another value. `experiments/paper-fidelity.yaml` sets every knob to the reference's value; `experiments/paper.yaml`
switches on the improvements, one key each, so a user can measure what each one buys. The report shows the table
for the run's own config, and says in red when a fidelity choice is a known flaw (ranking on test).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reward_search.analysis.document import Paragraph, Section, Table
from reward_search.config import ExperimentConfig, to_plain

NOT_AVAILABLE = "(not a key in this version)"


@dataclass(frozen=True)
class Knob:
    """One config key, the reference code's value for it, and why the improved setting differs."""

    key: str
    reference: Any
    why: str
    switch: bool = False  # one of the improvement switches (paper | improved value) this project added


KNOBS: tuple[Knob, ...] = (
    Knob(
        "training.selection_split",
        "test",
        "ranking on test selects on the split that is reported; dev is carved from train and disjoint from it",
        switch=True,
    ),
    Knob(
        "proposer.feedback",
        "paper",
        "rich feedback adds accuracy CIs, the top rewards' code, training curves, rejections and failure reasons",
        switch=True,
    ),
    Knob(
        "proposer.examples",
        "paper",
        "rich: a few worked solutions re-sampled each round instead of 20 fixed questions with bare numbers",
        switch=True,
    ),
    Knob(
        "analysis.mcnemar",
        "paper",
        "exact binomial for few discordant pairs and Holm (uniformly more powerful than Bonferroni) over every "
        "configuration, baseline and control included",
        switch=True,
    ),
    Knob(
        "data.system_prompt",
        "paper",
        "the project's shorter instruction; the wording changes how often a base model follows the format",
        switch=True,
    ),
    Knob(
        "eval.primary_mode",
        "strict",
        "lenient also accepts `$18` or `18.`; flexible takes the last number; strict is the paper's rule",
        switch=True,
    ),
    Knob("proposer.kind", "llm", "evolutionary and random proposers run offline, without an API key"),
    Knob("proposer.model", "groq/moonshotai/kimi-k2-instruct-0905", "any litellm model string"),
    Knob("proposer.temperature", 0.6, "the reference's sampling temperature for reward proposals"),
    Knob("proposer.max_tokens", 8192, "the reference's completion budget per proposal call"),
    Knob("search.rounds", 5, "the paper's search length"),
    Knob("search.candidates_per_round", 10, "the paper's round size"),
    Knob("search.gpus_per_trial", 1.0, "the reference ran one trial per GPU, one at a time per process"),
    Knob("training.steps", 500, "screening budget per candidate"),
    Knob("finalize.steps", 300, "the reference trained its final ensembles for 300 steps"),
    Knob("finalize.seeds", 3, "the paper re-trained its best ensemble with 3 seeds"),
    Knob("run.seed", 3407, "the reference's seed everywhere"),
    Knob(
        "data.dev_size",
        "none (all 7,473 train items train)",
        "a dev split carved from train (search decisions, intermediate reports); its items leave the GRPO pool",
    ),
    Knob("model.spec", "meta-llama/Llama-3.2-3B-Instruct", "the paper's policy model"),
    Knob("model.quantization", "4bit", "the reference trained LoRA on a 4-bit base (unsloth); bf16 is exact"),
    Knob("training.learning_rate", 5e-6, "the reference's GRPOConfig"),
    Knob("training.lr_scheduler", "cosine", "the reference's GRPOConfig"),
    Knob("training.warmup_ratio", 0.1, "the reference's GRPOConfig"),
    Knob("training.weight_decay", 0.1, "the reference's GRPOConfig"),
    Knob("training.optimizer", "adamw_8bit", "8-bit AdamW needs bitsandbytes and a GPU"),
    Knob("training.max_grad_norm", 1.0, "the reference's GRPOConfig"),
    Knob("training.generations_per_prompt", 4, "the reference's num_generations"),
    Knob("training.prompts_per_step", 1, "the reference's 1 x 4 completions per optimizer step"),
    Knob("training.max_completion_length", 1760, "the reference's 2048-token sequence minus a 288-token prompt"),
    Knob("training.lora.r", 32, "the reference's LoRA rank"),
    Knob("training.lora.alpha", 32, "the reference's LoRA alpha (equal to the rank)"),
    Knob("training.eval_max_new_tokens", 256, "the reference's greedy evaluation budget"),
    Knob("training.base_rewards", True, "the three protected base rewards train alongside every candidate"),
)

SWITCHES: tuple[str, ...] = tuple(k.key for k in KNOBS if k.switch)


def config_value(config: ExperimentConfig, key: str) -> Any:
    """The value at a dotted path of the config as plain data, or `NOT_AVAILABLE` when the key does not exist."""
    node: Any = to_plain(config)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return NOT_AVAILABLE
        node = node[part]
    return node


def _same(current: Any, reference: Any) -> bool:
    if isinstance(current, int | float) and isinstance(reference, int | float) and not isinstance(current, bool):
        return float(current) == float(reference)
    return current == reference


def fidelity_rows(config: ExperimentConfig) -> list[tuple[str, str, str, str, str]]:
    """(key, reference value, this run's value, same/differs, why) for every knob."""
    rows = []
    for knob in KNOBS:
        current = config_value(config, knob.key)
        same = _same(current, knob.reference)
        rows.append((knob.key, _show(knob.reference), _show(current), "same" if same else "differs", knob.why))
    return rows


def _show(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    return str(value)


def known_flaws(config: ExperimentConfig) -> list[str]:
    """Fidelity choices the run makes that are known flaws, one sentence each (shown in red)."""
    flaws = []
    if config.training.selection_split == "test":
        flaws.append(
            "This run ranks candidates and picks its ensembles on the test split, as the paper did: its test "
            "numbers are selected on the data they report, so they overstate what a fresh test set would show."
        )
    return flaws


def fidelity_section(config: ExperimentConfig | None) -> Section:
    """The report section: one row per knob, with both values and why they may differ."""
    section = Section("fidelity", "Fidelity to the paper's reference code")
    if config is None:
        return section.add(Paragraph("config.yaml is missing: no fidelity table.", note=True))
    rows = fidelity_rows(config)
    differing = sum(1 for row in rows if row[3] == "differs")
    section.add(
        Paragraph(
            f"{len(rows)} knobs where this project can differ from the reference code; this run differs on "
            f"{differing}. The switches marked in `experiments/paper.yaml` ({', '.join(SWITCHES)}) each turn one "
            "improvement on, so a run with one of them set back to the reference value measures what it buys."
        ),
        *(Paragraph(flaw, warning=True) for flaw in known_flaws(config)),
        Table(("key", "reference", "this run", "", "why it may differ"), tuple(rows)),
    )
    return section
