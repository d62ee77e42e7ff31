"""The LLM proposer: any litellm model writes candidate rewards from a templated prompt with feedback.

One `propose` call is one chat completion (plus retries with exponential backoff on rate limits, server errors,
timeouts and connection errors). The reply is parsed robustly (`parsing.py`); a malformed reply or exhausted
retries give zero candidates and a recorded error, never an exception. Credentials or an unknown model raise
`ProposerError`; a spent budget raises `BudgetExhausted` before the call (so the driver can stop the search).
Candidate code is only parsed here (never executed): the driver validates it in the sandbox.

Tokens, latency and cost of every call are recorded (litellm's usage and `completion_cost`, or the configured
prices for models litellm does not know; 0 and ``cost_known: false`` otherwise). API keys come from the
environment through litellm and are redacted from every recorded error message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from reward_search.candidates.candidate import EntryError, Origin, RewardCandidate, find_entry, normalise_source
from reward_search.candidates.settings import DEFAULT_IMPORTS, ProbeConfig
from reward_search.proposers.base import (
    PROTECTED_NAMES,
    BudgetExhausted,
    Proposer,
    ProposerContext,
    ProposerError,
    register_proposer,
    safe_name,
    unique_name,
)
from reward_search.proposers.parsing import parse_reply
from reward_search.proposers.settings import ProposerConfig
from reward_search.search.feedback import Feedback
from reward_search.task.base import Problem

SCORE_RANGE = "[-3, 3] (the base rewards use -4 to +3)"
MAX_RECORDED_ERRORS = 50
_CALCULATOR = re.compile(r"<<[^>]*>>")
_SECRET_PATTERN = re.compile(r"\b(?:sk-ant-|sk-|gsk_|xai-|hf_|Bearer\s+)[A-Za-z0-9_\-]{8,}")
_SECRET_ENV = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)


def import_litellm() -> Any:
    """litellm, imported on first use (about 5 s) with its price list read locally rather than downloaded."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def redact(text: str) -> str:
    """`text` with API keys (values of secret-looking environment variables, key-shaped tokens) replaced."""
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_ENV.search(name) and value in text:
            text = text.replace(value, "[redacted]")
    return _SECRET_PATTERN.sub("[redacted]", text)


@cache
def template(name: str) -> str:
    """A prompt template file from `reward_search/proposers/prompts/`."""
    return resources.files("reward_search.proposers").joinpath("prompts", name).read_text(encoding="utf-8")


@dataclass
class CallRecord:
    """One `propose` call's request: attempts, tokens, dollars, seconds, outcome."""

    round: int
    call: int
    model: str
    attempts: int = 0
    ok: bool = False
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    latency_s: float = 0.0  # time spent in requests (sleeps between retries excluded)
    candidates: int = 0
    notes: list[str] = field(default_factory=list)  # parse errors, dropped duplicates, renames

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sample_qa(train: Sequence[Problem], k: int, seed: int, round: int) -> list[Problem]:
    """`k` training problems, the same for a (seed, round) and fresh for each round."""
    rng = random.Random(f"qa:{seed}:{round}")
    return rng.sample(list(train), min(k, len(train)))


def _format_qa(problems: Sequence[Problem]) -> str:
    if not problems:
        return "(none)"
    blocks = []
    for i, p in enumerate(problems, 1):
        work = _CALCULATOR.sub("", p.solution.rpartition("####")[0]).strip()
        blocks.append(f"Question {i}: {p.question.strip()}\nWorked solution: {work}\nGold answer: {p.answer}")
    return "\n\n".join(blocks)


def _rename_entry(code: str, old: str, new: str) -> str:
    return re.sub(rf"^def\s+{re.escape(old)}\s*\(", f"def {new}(", code, count=1, flags=re.MULTILINE)


def _source_key(code: str) -> str:
    return hashlib.sha256(normalise_source(code).encode("utf-8")).hexdigest()[:16]


@register_proposer
class LLMProposer(Proposer):
    """Prompts an LLM (through litellm) for a JSON array of ``{name, code, description}`` rewards."""

    kind = "llm"

    def __init__(
        self,
        config: ProposerConfig,
        train: Sequence[Problem] = (),
        allowed_imports: Sequence[str] = DEFAULT_IMPORTS,
        completion: Callable[..., Any] | None = None,
        mock_responses: Sequence[Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(config)
        self._train = tuple(train)
        self.allowed_imports = tuple(allowed_imports)
        self._completion = completion
        self._mock = list(mock_responses) if mock_responses is not None else None
        self._mock_position = 0
        self._sleep = sleep
        self.records: list[CallRecord] = []
        self._seen: set[str] = set()  # normalised-source keys of everything proposed (dropped when repeated)
        self._names: set[str] = set()  # entry names handed out

    @classmethod
    def create(cls, config: ProposerConfig, context: ProposerContext) -> LLMProposer:
        return cls(config, context.train, context.allowed_imports, context.completion, context.mock_responses)

    # --- prompt ---------------------------------------------------------------------------------------------

    @property
    def train(self) -> tuple[Problem, ...]:
        """Q/A pool for the prompt; the packaged GSM8K sample's training pool when none was given."""
        if not self._train:
            from reward_search.config import DataConfig
            from reward_search.task.gsm8k import load_splits

            self._train = load_splits(DataConfig()).train
        return self._train

    def messages(self, feedback: Feedback, n: int, round: int) -> list[dict[str, str]]:
        """The chat messages for one call: the system role and the templated task with Q/A and feedback."""
        from reward_search.task.gsm8k import system_prompt

        user = Template(template("llm_user.txt")).substitute(
            n=n,
            round=round,
            base_rewards=", ".join(sorted(PROTECTED_NAMES)),
            policy_prompt=system_prompt(),
            score_range=SCORE_RANGE,
            allowed_imports=", ".join(self.allowed_imports),
            ms_per_completion=f"{ProbeConfig().max_ms_per_completion:g}",
            example=template("example_reward.py.txt").strip(),
            qa=_format_qa(sample_qa(self.train, self.config.qa_examples, self.config.seed, round)),
            feedback=feedback.render(self.config.feedback_token_budget),
        )
        return [{"role": "system", "content": template("llm_system.txt").strip()}, {"role": "user", "content": user}]

    # --- proposing ------------------------------------------------------------------------------------------

    def propose(self, feedback: Feedback, n: int, round: int) -> list[RewardCandidate]:
        """New candidates from one LLM call (possibly more or fewer than `n`; every reply object is kept)."""
        budget = self.config.budget_usd
        if budget is not None and self._usage.cost_usd >= budget:
            raise BudgetExhausted(
                f"proposer.budget_usd: ${budget:.2f} spent (${self._usage.cost_usd:.4f} over "
                f"{len(self.records)} LLM calls); raise the budget or stop the search"
            )
        call = self._next_call(round)
        record = CallRecord(round=round, call=call, model=self.config.model)
        self.records.append(record)
        reply = self._complete(self.messages(feedback, n, round), record)
        self._usage.latency_s += record.latency_s
        if reply is None:
            self._usage.failed_calls += 1
            self._note_error(f"round {round} call {call}: {record.error}")
            return []
        parsed = parse_reply(reply)
        record.notes.extend(parsed.errors)
        parents = tuple(e.candidate_id for e in feedback.top())
        candidates = self._candidates(parsed.items, feedback, round, parents, record.notes)
        record.candidates = len(candidates)
        self._usage.candidates += len(candidates)
        for note in parsed.errors:
            self._note_error(f"round {round} call {call}: {note}")
        return candidates

    def _candidates(
        self, items: list[dict[str, str]], feedback: Feedback, round: int, parents: tuple[str, ...], notes: list[str]
    ) -> list[RewardCandidate]:
        earlier = {_source_key(e.source) for e in feedback.entries}
        taken = self._names | {e.name for e in feedback.entries} | set(PROTECTED_NAMES)
        candidates = []
        for item in items:
            code, hint = item["code"], item["name"]
            key = _source_key(code)
            if key in self._seen or key in earlier:
                notes.append(f"dropped {hint or 'an unnamed reward'}: same code as an earlier candidate")
                continue
            self._seen.add(key)
            try:
                entry = find_entry(code, hint if hint.isidentifier() else None)
            except EntryError:
                try:
                    entry = find_entry(code)
                except (EntryError, SyntaxError):
                    entry = None  # unusable code is kept: validation rejects it with the reason, for feedback
            except SyntaxError:
                entry = None
            name = unique_name(safe_name(entry or hint or f"llm_r{round}"), taken)
            if entry is not None and name != entry:
                code = _rename_entry(code, entry, name)
                notes.append(f"renamed {entry} to {name} (name already used)")
            self._seen.add(_source_key(code))
            self._names.add(name)
            description = " ".join(item["description"].split())
            candidates.append(
                RewardCandidate(name, code, description, Origin(proposer=self.kind, round=round, parents=parents))
            )
        return candidates

    def _complete(self, messages: list[dict[str, str]], record: CallRecord) -> str | None:
        """The reply text, retrying transient failures; None (with `record.error`) when retries ran out."""
        litellm = import_litellm()
        transient = (
            litellm.RateLimitError,
            litellm.InternalServerError,
            litellm.ServiceUnavailableError,
            litellm.BadGatewayError,
            litellm.Timeout,
            litellm.APIConnectionError,
        )
        errors = litellm.exceptions
        fatal = (  # configuration problems: every further call would fail the same way
            errors.AuthenticationError,
            errors.PermissionDeniedError,
            errors.NotFoundError,
            errors.PaymentRequiredError,
            errors.LiteLLMUnknownProvider,
        )
        for attempt in range(self.config.max_retries + 1):
            record.attempts = attempt + 1
            started = time.perf_counter()
            try:
                response = self._request(messages)
            except transient as exc:
                record.latency_s += time.perf_counter() - started
                record.error = redact(f"{type(exc).__name__}: {exc}")
                record.notes.append(f"attempt {attempt + 1}: {record.error}")
                if attempt == self.config.max_retries:
                    break
                self._usage.retries += 1
                self._sleep(self._backoff(record, attempt))
                continue
            except fatal as exc:
                raise ProposerError(redact(f"{self.config.model}: {type(exc).__name__}: {exc}")) from None
            except errors.OpenAIError as exc:  # any other API error (e.g. context too long): this call yields nothing
                record.latency_s += time.perf_counter() - started
                record.error = redact(f"{type(exc).__name__}: {exc}")
                return None
            record.latency_s += time.perf_counter() - started
            self._account(response, record)
            record.ok, record.error = True, None
            return str(response.choices[0].message.content or "")
        return None

    def _request(self, messages: list[dict[str, str]]) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "timeout": self.config.timeout_s,
            "num_retries": 0,  # retries are ours, so that each attempt is seen and recorded
            "drop_params": True,  # e.g. a reasoning model that takes no temperature
        }
        if self.config.api_base:
            kwargs["api_base"] = self.config.api_base
        if self._mock is not None:
            if self._mock_position >= len(self._mock):
                raise ProposerError("mock_responses exhausted: a test asked for more LLM calls than it provided")
            kwargs["mock_response"] = self._mock[self._mock_position]
            self._mock_position += 1
        completion = self._completion or import_litellm().completion
        return completion(**kwargs)

    def _backoff(self, record: CallRecord, attempt: int) -> float:
        """Exponential backoff with deterministic jitter (50-100% of the nominal delay)."""
        nominal = min(self.config.max_backoff_s, self.config.backoff_s * 2**attempt)
        jitter = random.Random(f"backoff:{self.config.seed}:{record.round}:{record.call}:{attempt}").random()
        return nominal * (0.5 + 0.5 * jitter)

    def _account(self, response: Any, record: CallRecord) -> None:
        usage = getattr(response, "usage", None)
        record.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        record.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        config = self.config
        if config.input_usd_per_mtok is not None or config.output_usd_per_mtok is not None:
            record.cost_usd = (
                record.prompt_tokens * (config.input_usd_per_mtok or 0.0)
                + record.completion_tokens * (config.output_usd_per_mtok or 0.0)
            ) / 1e6
        else:
            try:
                record.cost_usd = float(import_litellm().completion_cost(completion_response=response) or 0.0)
            except Exception as exc:  # litellm raises several types for a model missing from its price list
                record.cost_usd, record.cost_known = 0.0, False
                record.notes.append(redact(f"cost unknown ({type(exc).__name__}); counted as $0"))
        self._usage.prompt_tokens += record.prompt_tokens
        self._usage.completion_tokens += record.completion_tokens
        self._usage.cost_usd += record.cost_usd

    def _note_error(self, message: str) -> None:
        self._usage.errors = [*self._usage.errors, redact(message)][-MAX_RECORDED_ERRORS:]

    @property
    def spent_usd(self) -> float:
        return self._usage.cost_usd

    # --- state ----------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "records": [r.to_dict() for r in self.records],
            "seen": sorted(self._seen),
            "names": sorted(self._names),
            "mock_position": self._mock_position,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.records = [CallRecord(**r) for r in state.get("records", ())]
        self._seen = set(state.get("seen", ()))
        self._names = set(state.get("names", ()))
        self._mock_position = int(state.get("mock_position", 0))
