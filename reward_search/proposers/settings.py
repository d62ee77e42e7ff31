"""Settings for proposers (LLM, evolutionary, random control) and for the feedback they are shown.

Frozen dataclasses in the experiment-config style, embedded as the ``proposer`` section of the experiment config.
API keys are never configured here: litellm reads them from the environment (e.g. ``ANTHROPIC_API_KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class EvolutionConfig:
    """Knobs of the offline evolutionary proposer."""

    min_terms: int = field(default=1, metadata={"min": 1, "max": 3})  # primitives per candidate
    max_terms: int = field(default=3, metadata={"min": 1, "max": 3})
    fresh_fraction: float = field(default=0.25, metadata={"min": 0.0, "max": 1.0})  # random newcomers per round
    crossover_rate: float = field(default=0.4, metadata={"min": 0.0, "max": 1.0})  # children from two parents
    mutation_scale: float = field(default=0.3, metadata={"min": 0.0, "max": 2.0})  # relative parameter jitter
    parents: int = field(default=4, metadata={"min": 1})  # how many of the feedback's top entries may breed

    def validate(self) -> list[tuple[str, str]]:
        if self.min_terms > self.max_terms:
            return [("min_terms", f"{self.min_terms} is more than max_terms ({self.max_terms})")]
        return []


@dataclass(frozen=True)
class ProposerConfig:
    """Which proposer writes candidates, how it talks to an LLM, and what feedback it sees."""

    kind: Literal["evolutionary", "llm", "random"] = "evolutionary"
    seed: int = 0
    # LLM: any litellm model string, e.g. anthropic/claude-sonnet-4-5, groq/moonshotai/kimi-k2-instruct-0905,
    # hosted_vllm/<model> with api_base pointing at the server.
    model: str = "groq/moonshotai/kimi-k2-instruct-0905"
    api_base: str | None = None
    temperature: float = field(default=0.8, metadata={"min": 0.0})
    max_tokens: int = field(default=8192, metadata={"min": 1})
    timeout_s: float = field(default=180.0, metadata={"min": 0.1})
    max_retries: int = field(default=5, metadata={"min": 0})  # on rate limits, server errors and timeouts
    backoff_s: float = field(default=2.0, metadata={"min": 0.0})  # first retry delay; doubles per attempt
    max_backoff_s: float = field(default=60.0, metadata={"min": 0.0})
    # Dollars the LLM proposer may spend in a run; None means no cap. Spending is checked before each call.
    budget_usd: float | None = field(default=5.0, metadata={"min": 0.0})
    # Prices for models litellm does not know (dollars per million tokens); when unset their cost is unknown (None).
    input_usd_per_mtok: float | None = field(default=None, metadata={"min": 0.0})
    output_usd_per_mtok: float | None = field(default=None, metadata={"min": 0.0})
    # How rewards come back: "fenced" (one ```python block per reward), "json" (an array of objects), or "auto"
    # (JSON through the provider's structured output where litellm says the model supports it, else fenced).
    reply_format: Literal["auto", "fenced", "json"] = "auto"
    # Errors of earlier calls in a round (parse errors, rejection reasons) quoted in the next call, in characters.
    correction_chars: int = field(default=1500, metadata={"min": 0})
    qa_examples: int = field(default=3, metadata={"min": 0})  # train Q/A pairs shown per prompt, resampled per round
    # paper: the reference's request (20 fixed train Q/A items drawn with seed 3407, final numbers only, and its
    # skeleton text); rich: this project's prompt with `qa_examples` worked examples re-sampled each round.
    examples: Literal["paper", "rich"] = "rich"
    # paper: every earlier trial as "name: round, F1, accuracy", best first, failed trials at F1 = 0, no code;
    # rich: the ranked table with CIs, top sources, training curves, rejections and failures; none: the results are
    # withheld (the unguided control: the same proposer and seeds, fresh proposals every round).
    feedback: Literal["paper", "rich", "none"] = "rich"
    # Feedback: how many top entries show their source, and the size of the rendered section (tokens ~ chars/4).
    top_k_sources: int = field(default=3, metadata={"min": 0})
    feedback_token_budget: int = field(default=6000, metadata={"min": 50})
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    # Reward files offered in round 1 beside the proposer's own candidates, through the same validation and
    # screening, with origin proposer "planted" (decoys a benchmark plants to see how the search ranks them).
    planted: tuple[str, ...] = ()

    def validate(self) -> list[tuple[str, str]]:
        if self.max_backoff_s < self.backoff_s:
            return [("max_backoff_s", f"{self.max_backoff_s} is less than backoff_s ({self.backoff_s})")]
        for i, path in enumerate(self.planted):
            if not Path(path).expanduser().is_file():
                return [(f"planted[{i}]", f"{path} is not a file (a reward module, FILE.py)")]
        if len(set(self.planted)) != len(self.planted):
            return [("planted", "names a file twice")]
        return []
