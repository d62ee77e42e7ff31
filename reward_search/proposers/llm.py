"""The LLM proposer: any litellm model writes candidate rewards from a templated prompt with feedback.

One `propose` call is one chat completion, sent by `transport.py` (retries, backoff, cost, redaction). Rewards
come back as fenced ```python blocks (the format models get right) or as JSON through the provider's structured
output where litellm says the model supports it; `parsing.py` reads both and repairs common JSON faults. A
malformed, empty, refused or cut-off reply gives zero candidates and a recorded reason, never an exception.
Credentials or an unknown model raise `ProposerError`; a spent budget raises `BudgetExhausted` before the call
(so the driver can stop the search). Candidate code is only parsed here (never executed): the driver validates it
in the sandbox.

Self-correction: parse errors and the validation verdicts the driver reports (`note_verdicts`) are quoted in the
next call of the same round. Transcripts: with a run directory attached, every request and reply is saved under
``proposals/round-<r>/call-<c>.json`` with secrets redacted (`transcripts.py`).

Tokens, latency and cost of every call are recorded in its `CallRecord` and summed in the proposer's usage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
import time
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from reward_search.candidates.candidate import EntryError, Origin, RewardCandidate, find_entry, normalise_source
from reward_search.candidates.settings import DEFAULT_IMPORTS, ProbeConfig
from reward_search.proposers.base import (
    PROTECTED_NAMES,
    BudgetExhausted,
    Proposer,
    ProposerContext,
    Verdict,
    safe_name,
    unique_name,
)
from reward_search.proposers.completion import complete_module, definitions
from reward_search.proposers.feedback import Feedback
from reward_search.proposers.parsing import ParsedReply, parse_reply
from reward_search.proposers.replay import recorded_reply
from reward_search.proposers.settings import ProposerConfig
from reward_search.proposers.transcripts import FOLDER, TranscriptStore, relative_path
from reward_search.proposers.transport import CallRecord, LLMTransport, import_litellm, redact
from reward_search.task.base import Problem, Task

SCORE_RANGE = "[-3, 3] (the base rewards use -4 to +3)"
MAX_RECORDED_ERRORS = 50
DUPLICATE = "same code as an earlier candidate"  # the note on a reward dropped as a resubmission
MAX_PROBLEM_CHARS = 400  # one quoted problem in a correction section
_CALCULATOR = re.compile(r"<<[^>]*>>")


def _litellm_completion(**kwargs: Any) -> Any:
    """litellm's `completion`, looked up at each call (a test may replace `import_litellm`); picklable."""
    return import_litellm().completion(**kwargs)


@cache
def template(name: str) -> str:
    """A prompt template file from `reward_search/proposers/prompts/`."""
    return resources.files("reward_search.proposers").joinpath("prompts", name).read_text(encoding="utf-8")


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


def _quote(problem: str) -> str:
    problem = " ".join(problem.split())
    return problem if len(problem) <= MAX_PROBLEM_CHARS else problem[: MAX_PROBLEM_CHARS - 3] + "..."


class LLMProposer(Proposer):
    """Prompts an LLM (through litellm) for rewards as fenced Python blocks or structured JSON; see the module."""

    kind = "llm"

    def __init__(
        self,
        config: ProposerConfig,
        train: Sequence[Problem] = (),
        allowed_imports: Sequence[str] = DEFAULT_IMPORTS,
        completion: Callable[..., Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        task: Task | None = None,
    ) -> None:
        super().__init__(config)
        self._task = task
        self._train = tuple(train)
        self.allowed_imports = tuple(allowed_imports)
        self.transport = LLMTransport(config, completion or _litellm_completion, sleep)
        self.records: list[CallRecord] = []
        self._seen: set[str] = set()  # normalised-source keys of everything proposed (dropped when repeated)
        self._names: set[str] = set()  # entry names handed out
        self._problems: dict[int, list[str]] = {}  # round -> problems to quote in its next call
        self._origins: dict[str, list[int]] = {}  # candidate id -> [round, call] of the reply it came from
        self.transcripts: TranscriptStore | None = None

    @classmethod
    def create(cls, config: ProposerConfig, context: ProposerContext) -> LLMProposer:
        return cls(
            config,
            context.train,
            context.allowed_imports,
            context.completion,
            task=context.task,
        )

    def attach_run_dir(self, run_dir: str | Path) -> None:
        """Save every request and reply under ``<run_dir>/proposals/`` from now on."""
        self.transcripts = TranscriptStore(Path(run_dir) / FOLDER, redact)

    # --- prompt ---------------------------------------------------------------------------------------------

    @property
    def task(self) -> Task:
        """The task the rewards are for; the default task (the packaged GSM8K sample) when none was given."""
        if self._task is None:
            from reward_search.task import get_task

            self._task = get_task()
        return self._task

    @property
    def train(self) -> tuple[Problem, ...]:
        """Q/A pool for the prompt; the task's training pool when none was given."""
        if not self._train:
            self._train = self.task.load_splits().train
        return self._train

    def reply_format(self) -> str:
        """``json`` or ``fenced``: the configured format, with ``auto`` resolved for the model."""
        return self.transport.reply_format()

    def messages(self, feedback: Feedback, n: int, round: int) -> list[dict[str, str]]:
        """The chat messages for one call: the system role, and the templated task with Q/A, feedback, the reply
        format and (after a failed call in this round) the problems to fix. All prompt text is built here.
        `proposer.examples: paper` sends the reference's request instead (`paper_prompt.py`)."""
        from reward_search.proposers.paper_prompt import feedback_text, paper_messages

        if self.config.examples == "paper":
            return paper_messages(self.train, feedback, n, self.config.feedback, self.config.feedback_token_budget)

        user = Template(template("llm_user.txt")).substitute(
            n=n,
            round=round,
            base_rewards=", ".join(sorted(PROTECTED_NAMES)),
            task_name=self.task.display_name,
            policy_prompt=self.task.system_prompt(),
            score_range=SCORE_RANGE,
            allowed_imports=", ".join(self.allowed_imports),
            ms_per_completion=f"{ProbeConfig().max_ms_per_completion:g}",
            example=template("example_reward.py.txt").strip(),
            qa=_format_qa(sample_qa(self.train, self.config.qa_examples, self.config.seed, round)),
            feedback=feedback_text(feedback, self.config.feedback, self.config.feedback_token_budget),
            reply_format=Template(template(f"reply_{self.reply_format()}.txt").strip()).substitute(n=n),
        )
        problems = self._correction_lines(round)
        if problems:
            user += "\n" + Template(template("llm_correction.txt")).substitute(n=n, problems=problems)
        system = Template(template("llm_system.txt").strip()).substitute(
            task_name=self.task.display_name, task_description=self.task.description
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _correction_lines(self, round: int) -> str:
        """The round's problems so far, newest last, as bullet lines within `correction_chars`."""
        lines: list[str] = []
        used = 0
        for problem in reversed(self._problems.get(round, [])):
            line = f"- {problem}"
            if line in lines:
                continue
            if used + len(line) > self.config.correction_chars:
                break
            lines.insert(0, line)
            used += len(line) + 1
        return "\n".join(lines)

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
        messages = self.messages(feedback, n, round)
        record = CallRecord(round=round, call=call, model=self.config.model)
        replayed = recorded_reply(self.transcripts, record, messages, redact)  # a killed driver's call, reissued
        while replayed is None and self.transcripts is not None and self.transcripts.path(round, call).exists():
            call += 1  # a file of a session that died before saving its state: never overwrite it
            self._calls[round] = call + 1
        record.call = call
        self.records.append(record)
        reply = self._complete(messages, record, replayed)
        if reply is None:
            record.outcome = "error"
            self._usage.failed_calls += 1
            self._note_error(f"round {round} call {call + 1}: {record.error}")
            self._save(record, messages, None, None, [])
            return []
        parsed = parse_reply(reply)
        parsed.errors = [redact(error) for error in parsed.errors]  # errors quote the reply, which may echo a key
        record.notes.extend(parsed.errors)
        record.parsed, record.reply_format = len(parsed.items), parsed.format
        record.outcome = "truncated" if record.finish_reason == "length" else (parsed.reason or "ok")
        parents = tuple(e.candidate_id for e in feedback.top())
        candidates = self._candidates(parsed.items, feedback, round, parents, record.notes)
        if self.transcripts is not None:  # each candidate record links the reply it came from
            link = f"{FOLDER}/{relative_path(round, call)}"
            candidates = [
                dataclasses.replace(c, origin=dataclasses.replace(c.origin, transcript=link)) for c in candidates
            ]
        record.candidates = len(candidates)
        self._usage.candidates += len(candidates)
        for note in parsed.errors:
            self._note_error(f"round {round} call {call + 1}: {note}")
        self._learn_from_reply(record, parsed)
        for candidate in candidates:
            self._origins[candidate.id] = [round, call]
        self._save(record, messages, reply, parsed, candidates)
        return candidates

    def _learn_from_reply(self, record: CallRecord, parsed: ParsedReply) -> None:
        """Queue this reply's problems for the next call of its round."""
        problems = self._problems.setdefault(record.round, [])
        label = f"reply {record.call + 1}"
        if record.outcome == "truncated":
            problems.append(f"{label} was cut off at the token limit: write shorter, simpler code")
        if parsed.repairs:
            problems.append(f"{label} had broken JSON ({parsed.repairs.removeprefix('repaired ')}): follow the format")
        problems.extend(_quote(f"{label}: {error}") for error in parsed.errors)
        resubmitted = [note.split(":")[0].removeprefix("dropped ") for note in record.notes if note.endswith(DUPLICATE)]
        if resubmitted:  # a model that repeats itself is told so, or it repeats itself again
            problems.append(f"{label} resubmitted earlier rewards unchanged ({', '.join(resubmitted)}): write new ones")

    def note_verdicts(self, round: int, verdicts: Sequence[Verdict]) -> None:
        """The driver's validation outcome for candidates of `round`: (candidate id, name, accepted, reasons).

        Rejection reasons are quoted in the round's next call; the verdicts are added to each reply's transcript.
        """
        by_call: dict[int, list[dict[str, Any]]] = {}
        for cid, name, accepted, reasons in verdicts:
            origin = self._origins.get(cid)
            if origin is None or origin[0] != round:
                continue
            record = next((r for r in self.records if r.round == round and r.call == origin[1]), None)
            if record is not None:
                record.accepted += int(accepted)
                record.rejected += int(not accepted)
            if not accepted:
                self._problems.setdefault(round, []).append(_quote(f"{name} was rejected: {'; '.join(reasons)}"))
            by_call.setdefault(origin[1], []).append(
                {"candidate_id": cid, "name": name, "accepted": accepted, "reasons": list(reasons)}
            )
        if self.transcripts is not None:
            for call, items in by_call.items():
                record = next(r for r in self.records if r.round == round and r.call == call)
                self.transcripts.update(round, call, verdicts=items, record=record.to_dict())

    def round_summary(self, round: int) -> str:
        """What this round's calls gave, e.g. ``3 malformed replies, 2 rewards rejected``."""
        records = [r for r in self.records if r.round == round]
        counts = (
            (sum(r.outcome == "malformed" for r in records), "malformed reply", "malformed replies"),
            (sum(r.outcome == "truncated" for r in records), "reply cut off", "replies cut off"),
            (sum(r.outcome == "empty" for r in records), "empty reply", "empty replies"),
            (sum(r.outcome == "refused" for r in records), "refusal", "refusals"),
            (sum(r.outcome == "error" for r in records), "failed request", "failed requests"),
            (sum(r.rejected for r in records), "reward rejected", "rewards rejected"),
            (sum(max(0, r.parsed - r.candidates) for r in records), "repeated reward", "repeated rewards"),
        )
        parts = [f"{count} {one if count == 1 else many}" for count, one, many in counts if count]
        return ", ".join(parts) or "no rewards proposed"

    def _save(
        self,
        record: CallRecord,
        messages: list[dict[str, str]],
        reply: str | None,
        parsed: ParsedReply | None,
        candidates: list[RewardCandidate],
    ) -> None:
        """Write this call's transcript (when a run directory is attached) and link its candidates to it."""
        if self.transcripts is None:
            return
        record.transcript = f"{FOLDER}/{relative_path(record.round, record.call)}"
        self.transcripts.write(
            record.round,
            record.call,
            {
                "request": {"messages": messages, **self.transport.params()},
                "reply": reply,
                "parse": None if parsed is None else dataclasses.asdict(parsed),
                "candidates": [{"candidate_id": c.id, "name": c.name} for c in candidates],
                "record": record.to_dict(),
            },
        )
        self.transcripts.link([c.id for c in candidates], record.round, record.call)

    def _candidates(
        self, items: list[dict[str, str]], feedback: Feedback, round: int, parents: tuple[str, ...], notes: list[str]
    ) -> list[RewardCandidate]:
        earlier = {_source_key(e.source) for e in feedback.entries}
        taken = self._names | {e.name for e in feedback.entries} | set(PROTECTED_NAMES)
        candidates = []
        known = definitions(template("example_reward.py.txt"))
        for item in items:
            code, hint = item["code"], item["name"]
            code, added = complete_module(code, known, DEFAULT_IMPORTS)
            notes.extend(f"{hint or 'a reward'}: {note}" for note in added)
            key = _source_key(code)
            if key in self._seen or key in earlier:
                notes.append(f"dropped {hint or 'an unnamed reward'}: {DUPLICATE}")
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

    def _complete(self, messages: list[dict[str, str]], record: CallRecord, replayed: str | None = None) -> str | None:
        """One request through the transport (or its `replayed` reply, `replay.py`); its attempts, tokens, dollars
        and seconds join the usage."""
        try:
            return replayed if replayed is not None else self.transport.complete(messages, record)
        finally:
            usage = self._usage
            usage.retries += max(0, record.attempts - 1)
            usage.latency_s += record.latency_s
            usage.prompt_tokens += record.prompt_tokens
            usage.completion_tokens += record.completion_tokens
            usage.cost_usd += record.cost_usd or 0.0
            usage.unpriced_calls += int(not record.cost_known)

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
            "problems": {str(r): p for r, p in sorted(self._problems.items())},
            "origins": dict(sorted(self._origins.items())),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.records = [CallRecord(**r) for r in state.get("records", ())]
        self._seen = set(state.get("seen", ()))
        self._names = set(state.get("names", ()))
        self._problems = {int(r): list(p) for r, p in state.get("problems", {}).items()}
        self._origins = {cid: list(origin) for cid, origin in state.get("origins", {}).items()}
