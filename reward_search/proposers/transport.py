"""The LLM transport: one chat completion through litellm, with retries, backoff, cost and secrets redacted.

`LLMTransport.complete(messages, record)` sends one request (plus retries with exponential backoff and
deterministic jitter on rate limits, server errors, timeouts and connection errors) and fills the call's
`CallRecord`: attempts, tokens, dollars, seconds in requests. Credentials or an unknown model raise
`ProposerError` (every further call would fail the same way); any other API error gives None and the reason.
Retries are ours, not litellm's (`num_retries: 0`), so that each attempt is recorded, the sleep is injectable and
an injected `completion` (tests, custom clients) retries the same way.

Cost is litellm's `completion_cost`, or the configured prices for models litellm does not know; otherwise it is
unknown (``cost_usd: None``, ``cost_known: false``), never $0. API keys come from the environment through litellm
and are redacted (`redact`) from everything recorded.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reward_search.proposers.base import ProposerError
from reward_search.proposers.settings import ProposerConfig

REWARDS_SCHEMA = {  # structured output: the same objects the JSON reply format asks for
    "type": "object",
    "properties": {
        "rewards": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "code": {"type": "string"},
                    "description": {"type": "string"},
                },
                "required": ["name", "code", "description"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["rewards"],
    "additionalProperties": False,
}
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


def supports_schema(model: str) -> bool:
    """Whether litellm reports structured output (a JSON schema) for `model`; False when it does not know it."""
    try:
        return bool(import_litellm().supports_response_schema(model=model))
    except Exception:  # litellm raises several types for models missing from its list
        return False


def key_in_environment(model: str) -> bool:
    """Whether the environment holds the API key litellm looks for with `model`."""
    try:
        return bool(import_litellm().validate_environment(model=model).get("keys_in_environment"))
    except Exception:  # an unknown provider: let litellm report it on the call
        return True


@dataclass
class CallRecord:
    """One `propose` call: attempts, tokens, dollars, seconds, and what the reply gave."""

    round: int
    call: int
    model: str
    attempts: int = 0
    ok: bool = False
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0  # None: the model's price is unknown
    cost_known: bool = True
    latency_s: float = 0.0  # time spent in requests (sleeps between retries excluded)
    candidates: int = 0
    notes: list[str] = field(default_factory=list)  # parse errors, dropped duplicates, renames
    outcome: str = ""  # ok | malformed | truncated | empty | refused | error
    finish_reason: str | None = None
    reply_format: str = ""  # what the reply turned out to be: fenced | json | none
    parsed: int = 0  # reward objects found in the reply
    accepted: int = 0  # of its candidates, as validated by the driver
    rejected: int = 0
    transcript: str | None = None  # path relative to the run directory

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _error_classes(litellm: Any) -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(transient errors worth a retry, configuration errors that every further call would repeat)."""
    errors = litellm.exceptions
    transient = (
        litellm.RateLimitError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
        litellm.Timeout,
        litellm.APIConnectionError,
    )
    fatal = (
        errors.AuthenticationError,
        errors.PermissionDeniedError,
        errors.NotFoundError,
        errors.PaymentRequiredError,
        errors.LiteLLMUnknownProvider,
    )
    return transient, fatal


class LLMTransport:
    """Sends chat requests for one proposer config through `completion` (litellm's by default); see the module."""

    def __init__(
        self,
        config: ProposerConfig,
        completion: Callable[..., Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.completion = completion
        self.sleep = sleep

    def reply_format(self) -> str:
        """``json`` or ``fenced``: the configured format, with ``auto`` resolved for the model."""
        if self.config.reply_format != "auto":
            return self.config.reply_format
        return "json" if supports_schema(self.config.model) else "fenced"

    def params(self) -> dict[str, Any]:
        """Everything sent with the messages (recorded in transcripts as well)."""
        params: dict[str, Any] = {
            "model": self.config.model,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "timeout": self.config.timeout_s,
            "num_retries": 0,  # retries are ours, so that each attempt is seen and recorded
            "drop_params": True,  # e.g. a reasoning model that takes no temperature
        }
        if self.config.api_base:
            params["api_base"] = self.config.api_base
            if not key_in_environment(self.config.model):
                params["api_key"] = "none"  # a self-hosted server needs no key, but litellm's client wants one
        if self.reply_format() == "json" and supports_schema(self.config.model):
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "rewards", "schema": REWARDS_SCHEMA, "strict": True},
            }
        return params

    def complete(self, messages: list[dict[str, str]], record: CallRecord) -> str | None:
        """The reply text, retrying transient failures; None (with `record.error`) when retries ran out."""
        litellm = import_litellm()
        transient, fatal = _error_classes(litellm)
        for attempt in range(self.config.max_retries + 1):
            record.attempts = attempt + 1
            started = time.perf_counter()
            try:
                response = (self.completion or import_litellm().completion)(**self.params(), messages=messages)
            except transient as exc:
                record.latency_s += time.perf_counter() - started
                record.error = redact(f"{type(exc).__name__}: {exc}")
                record.notes.append(f"attempt {attempt + 1}: {record.error}")
                if attempt < self.config.max_retries:
                    self.sleep(self.backoff(record, attempt))
                continue
            except fatal as exc:
                raise ProposerError(redact(f"{self.config.model}: {type(exc).__name__}: {exc}")) from None
            except litellm.exceptions.OpenAIError as exc:  # any other API error (e.g. context too long): no reply
                record.latency_s += time.perf_counter() - started
                record.error = redact(f"{type(exc).__name__}: {exc}")
                return None
            record.latency_s += time.perf_counter() - started
            self.account(response, record)
            record.ok, record.error = True, None
            choice = response.choices[0]
            record.finish_reason = getattr(choice, "finish_reason", None)
            return str(choice.message.content or "")
        return None

    def backoff(self, record: CallRecord, attempt: int) -> float:
        """Exponential backoff with deterministic jitter (50-100% of the nominal delay)."""
        nominal = min(self.config.max_backoff_s, self.config.backoff_s * 2**attempt)
        jitter = random.Random(f"backoff:{self.config.seed}:{record.round}:{record.call}:{attempt}").random()
        return nominal * (0.5 + 0.5 * jitter)

    def account(self, response: Any, record: CallRecord) -> None:
        """Tokens and dollars of one reply into `record` (the cost unknown, with a note, for an unpriced model)."""
        usage = getattr(response, "usage", None)
        record.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        record.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        config = self.config
        if config.input_usd_per_mtok is not None or config.output_usd_per_mtok is not None:
            record.cost_usd = (
                record.prompt_tokens * (config.input_usd_per_mtok or 0.0)
                + record.completion_tokens * (config.output_usd_per_mtok or 0.0)
            ) / 1e6
            return
        try:
            record.cost_usd = float(import_litellm().completion_cost(completion_response=response) or 0.0)
        except Exception as exc:  # litellm raises several types for a model missing from its price list
            record.cost_usd, record.cost_known = None, False
            record.notes.append(
                redact(f"cost unknown ({type(exc).__name__}); set proposer.input_usd_per_mtok to price it")
            )
