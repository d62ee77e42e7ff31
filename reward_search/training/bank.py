"""The rollout bank, build side: N training-pool questions x K samples from the policy model itself.

Sampled at the training temperature and top-p, from the training chat form and system prompt, graded by the
task (strict), and written as Parquet (`candidates/bank.py` reads it). A group where the model wrote no correct
completion in the training format gets the gold worked solution in that format in its last place, marked
synthetic; a group with no wrong one in it gets a realistic slip likewise in its first place (so every group
holds a decisive pair in the format training rewards). Cached under `<cache root>/banks/<fingerprint>.parquet`, so runs
and `rewards check` reuse it; a fingerprint that differs (model, task, prompt, sampling) is a different file, so
a stale bank is never read for another setting.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reward_search import io
from reward_search.candidates.bank import Bank, load_bank, shipped_bank_path
from reward_search.candidates.probe_texts import parse_solution, render, wrong_completion
from reward_search.task.base import Problem, Task, render_prompt
from reward_search.task.base_rewards import BASE_REWARDS
from reward_search.task.grading import STRICT_FORMAT

BANK_VERSION = 1
PADDINGS = ("", " ", "\n")  # how models space the answer inside <solution>; synthetic rows vary it


@dataclass(frozen=True)
class BankSpec:
    """What a bank is a function of; its sha256 is the fingerprint."""

    model: str
    task: str
    train_sha256: str
    prompt: str  # JSON of the chat messages around a placeholder question
    temperature: float
    top_p: float
    max_completion_length: int
    samples: int
    questions: int
    seed: int = 0

    @property
    def fingerprint(self) -> str:
        fields = {**self.__dict__, "version": BANK_VERSION}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def bank_spec(config: Any, task: Task, train_sha256: str) -> BankSpec:
    """The spec of the bank an experiment config trains against."""
    t, bank = config.training, config.candidates.bank
    return BankSpec(
        model=config.model.spec,
        task=task.name,
        train_sha256=train_sha256,
        prompt=json.dumps(task.messages("{question}")),
        temperature=t.temperature,
        top_p=t.top_p,
        max_completion_length=t.max_completion_length,
        samples=bank.samples or t.generations_per_prompt,
        questions=bank.questions,
        seed=bank.seed,
    )


def cache_path(spec: BankSpec) -> Path:
    from reward_search.training.models import cache_root

    return cache_root() / "banks" / f"{spec.fingerprint}.parquet"


def _synthetic(problem: Problem, correct: bool, rng: random.Random) -> str:
    item = parse_solution(problem.question, problem.solution or f"#### {problem.answer}")
    item = type(item)(item.question, problem.answer, item.lines)
    reasoning, answer = "\n".join(item.steps), problem.answer
    if not correct:
        reasoning, answer = wrong_completion(item, "slip", rng)
    pad = rng.choice(PADDINGS)
    return render(reasoning, f"{pad}{answer}{pad}", "tags")


def _rows_for(
    task: Task, group: int, problem: Problem, texts: Sequence[str], fingerprint: str, rng: random.Random
) -> list[dict[str, Any]]:
    """One group's rows; its last place becomes a synthetic gold (or slip) when the model gave no correct (wrong)."""
    graded = [bool(task.grade(text, problem.answer)["correct"]) for text in texts]
    texts, synthetic = list(texts), [False] * len(texts)
    for want, slot in ((True, len(texts) - 1), (False, 0)):
        tagged = [ok for text, ok in zip(texts, graded, strict=True) if STRICT_FORMAT.search(text)]
        if want not in tagged:  # no such completion in the training format: write one there
            texts[slot], graded[slot], synthetic[slot] = _synthetic(problem, want, rng), want, True
    prompt = json.dumps(task.messages(problem.question))
    base = [0.0] * len(texts)
    for func in BASE_REWARDS.values():
        base = [b + s for b, s in zip(base, func(None, texts, answer=[problem.answer] * len(texts)), strict=True)]
    return [
        {
            "fingerprint": fingerprint,
            "group": group,
            "question_index": problem.index,
            "prompt": prompt,
            "completion": text,
            "answer": problem.answer,
            "correct": ok,
            "format": "tags" if STRICT_FORMAT.search(text) else "other",
            "synthetic": made,
            "base_reward": float(score),
        }
        for text, ok, made, score in zip(texts, graded, synthetic, base, strict=True)
    ]


def _sample(loaded: Any, task: Task, problems: Sequence[Problem], spec: BankSpec, progress: bool) -> list[list[str]]:
    """K samples per question through the training backend's plain path (`model.generate`, as TRL's hf backend)."""
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(spec.seed)
    tokenizer, model, out = loaded.tokenizer, loaded.model, []
    options = {"do_sample": spec.temperature > 0, "max_new_tokens": spec.max_completion_length}
    if spec.temperature > 0:
        options.update(temperature=spec.temperature, top_p=spec.top_p, top_k=0)
    with tqdm(total=len(problems), desc="rollout bank", unit="q", disable=not progress, dynamic_ncols=True) as bar:
        for problem in problems:
            text = render_prompt(tokenizer, task.messages(problem.question))
            encoded = tokenizer([text], return_tensors="pt", add_special_tokens=False).to(loaded.device)
            with torch.no_grad():
                ids = model.generate(**encoded, num_return_sequences=spec.samples, **options)
            start = encoded["input_ids"].shape[1]
            out.append(tokenizer.batch_decode(ids[:, start:], skip_special_tokens=True))
            bar.update(1)
    return out


def build_bank(loaded: Any, task: Task, train: Sequence[Problem], spec: BankSpec, path: Path, progress=True) -> Bank:
    """Sample, grade and write the bank for `spec` at `path` (atomically); the first `spec.questions` of `train`."""
    problems = random.Random(spec.seed).sample(list(train), k=min(spec.questions, len(train)))
    samples = _sample(loaded, task, problems, spec, progress)
    rng = random.Random(spec.seed + 1)
    rows = []
    for group, (problem, texts) in enumerate(zip(problems, samples, strict=True)):
        rows += _rows_for(task, group, problem, texts, spec.fingerprint, rng)
    io.write_parquet(path, rows)
    return load_bank(path, spec.fingerprint)


def ensure_bank(config: Any, run_dir: Path | None = None, progress: bool = True) -> Bank:
    """The bank of `config`, from the cache or built once; linked from `run_dir/bank.parquet` when given.

    A cached file is used only under its own fingerprint, so a changed model, prompt or sampling setting builds
    a new one."""
    from reward_search.task.registry import get_task
    from reward_search.training.models import load_model

    task = get_task(config)
    splits = task.load_splits()
    spec = bank_spec(config, task, splits.manifest.splits["train"].sha256)
    path = Path(config.candidates.bank.path).expanduser() if config.candidates.bank.path else cache_path(spec)
    shipped = shipped_bank_path()
    if not config.candidates.bank.path and shipped.is_file() and load_bank(shipped).fingerprint == spec.fingerprint:
        path = shipped  # the embedded model's bank, shipped with the package: no generation
    if path.is_file() and load_bank(path).fingerprint == spec.fingerprint:
        bank = load_bank(path, spec.fingerprint)
    else:
        m = config.model
        loaded = load_model(m.spec, m.dtype, m.device, quantization=m.quantization)
        bank = build_bank(loaded, task, splits.train, spec, path, progress)
    if run_dir is not None:
        link = Path(run_dir) / "bank.parquet"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path.resolve())
    return bank


SECRET_FILE = "probe_secret.txt"


def run_candidates_config(config: Any, run_dir: Path, progress: bool = True) -> Any:
    """The `candidates` section a search validates with: the run's bank (built or reused, linked from the run
    directory) under its fingerprint, and the probes seeded from the run's secret (created once, kept in the run
    directory; candidates never see the filesystem), so a candidate's verdict is the same every time in the run."""
    import dataclasses
    import secrets

    bank = ensure_bank(config, run_dir, progress)
    secret_file = Path(run_dir) / SECRET_FILE
    if not secret_file.is_file():
        io.write_text(secret_file, str(secrets.randbits(63)))
    seed = int(secret_file.read_text(encoding="utf-8").strip())
    c = config.candidates
    return dataclasses.replace(
        c,
        bank=dataclasses.replace(c.bank, path=bank.path, fingerprint=bank.fingerprint),
        probes=dataclasses.replace(c.probes, seed=seed if c.probes.seed is None else c.probes.seed),
    )
