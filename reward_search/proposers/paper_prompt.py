"""The reference code's reward-generation request, for `proposer.examples: paper`.

One user message (no system message), built from `prompts/paper_request.txt`: the reference's instructions and
example reward, the earlier trials (`proposer.feedback` decides their format), and 20 training questions drawn once
with seed 3407, each with its final number only (no worked solution). The questions are the same every round.
The text is the reference's (arXiv 2605.02073's code, MIT licence), kept byte for byte so that a fidelity run asks
the proposer model exactly what the paper asked; the reply format is JSON, which `parsing.py` reads.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import cache
from importlib import resources
from string import Template

from reward_search.proposers.feedback import Feedback, render_paper_feedback
from reward_search.task.base import Problem

PAPER_EXAMPLES = 20
PAPER_EXAMPLES_SEED = 3407
TEMPLATE_FILE = "paper_request.txt"


@cache
def request_template() -> str:
    """The request text with `${count}`, `${prior_section}` and `${examples}` placeholders (read once)."""
    return resources.files("reward_search.proposers").joinpath("prompts", TEMPLATE_FILE).read_text(encoding="utf-8")


def paper_examples(train: Sequence[Problem], k: int = PAPER_EXAMPLES, seed: int = PAPER_EXAMPLES_SEED) -> list[Problem]:
    """The reference's draw: `k` positions of the training pool sampled with `random.Random(seed)`, in draw order."""
    rng = random.Random(seed)
    return [train[i] for i in rng.sample(range(len(train)), min(k, len(train)))]


def format_examples(problems: Sequence[Problem]) -> str:
    """``[i] Q: question`` / ``A: final number`` blocks separated by blank lines, as the reference wrote them."""
    return "\n\n".join(f"[{i}] Q: {p.question.strip()}\nA: {p.answer.strip()}" for i, p in enumerate(problems, 1))


def prior_section(feedback: Feedback, style: str, token_budget: int | None = None) -> str:
    """The earlier-trials part of the request: the reference's list (`paper`) or this project's rich summary."""
    if style == "paper":
        return render_paper_feedback(feedback)
    if feedback.empty:
        return ""
    return feedback.render(token_budget) + "\n\n"


def paper_request(
    train: Sequence[Problem], feedback: Feedback, n: int, feedback_style: str = "paper", token_budget: int | None = None
) -> str:
    """The text of one reference-style request for `n` rewards."""
    return Template(request_template()).substitute(
        count=n,
        prior_section=prior_section(feedback, feedback_style, token_budget),
        examples=format_examples(paper_examples(train)),
    )


def paper_messages(
    train: Sequence[Problem], feedback: Feedback, n: int, feedback_style: str = "paper", token_budget: int | None = None
) -> list[dict[str, str]]:
    """The chat messages of one reference-style call: a single user message, as the reference sent."""
    return [{"role": "user", "content": paper_request(train, feedback, n, feedback_style, token_budget)}]


def feedback_text(feedback: Feedback, style: str, token_budget: int | None = None) -> str:
    """The feedback slot of this project's own prompt in either style (`proposer.feedback`)."""
    if style == "paper":
        return render_paper_feedback(feedback).strip() or "No earlier rounds: no reward has been trained yet."
    return feedback.render(token_budget)
