"""The offline evolutionary proposer (the embedded default): weighted sums of 1-3 reward primitives, as source.

A candidate is a genome (primitives with weights and parameters) rendered as a readable Python module: the
primitives' helper functions copied from `primitives.py` and one entry function with TRL's signature. The genome
is also written into the module docstring (``genome: {...}``), so later rounds can mutate and recombine the
feedback's top entries from their source alone. Round 1 is random; later rounds breed from the top entries that
are not credibly worse than the best (`breeding_pool`; parents recorded in ``origin.parents``) with a share of fresh
random genomes mixed in.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import random
from collections.abc import Collection, Sequence
from typing import Any

from reward_search.candidates.candidate import Origin, RewardCandidate
from reward_search.candidates.records import LeaderboardEntry
from reward_search.proposers.base import Proposer
from reward_search.proposers.feedback import Feedback, no_signal
from reward_search.proposers.primitives import PRIMITIVES, Param, helpers_for
from reward_search.proposers.primitives import function_source as _source
from reward_search.proposers.settings import ProposerConfig

Genome = list[dict[str, Any]]  # terms: {"primitive": key, "weight": float, "params": {name: value}}
_GENOME_PREFIX = "genome: "
_WEIGHTS = (0.1, 3.0)
_MAX_ATTEMPTS = 50


def canonical(genome: Genome) -> Genome:
    """Terms sorted by primitive with sorted parameters: equal genomes compare (and hash) equal."""
    terms = sorted(genome, key=lambda t: t["primitive"])
    return [
        {"primitive": t["primitive"], "weight": t["weight"], "params": dict(sorted(t["params"].items()))} for t in terms
    ]


def genome_key(genome: Genome) -> str:
    """A short content hash of a genome."""
    return hashlib.sha256(json.dumps(canonical(genome), sort_keys=True).encode()).hexdigest()[:16]


def parse_genome(source: str) -> Genome | None:
    """The genome recorded in a candidate's module docstring; None for other candidates (e.g. LLM-written)."""
    try:
        doc = ast.get_docstring(ast.parse(source)) or ""
    except (SyntaxError, ValueError, RecursionError):
        return None
    for line in doc.splitlines():
        if line.startswith(_GENOME_PREFIX):
            try:
                terms = json.loads(line[len(_GENOME_PREFIX) :])
            except json.JSONDecodeError:
                return None
            return terms if _well_formed(terms) else None
    return None


def _well_formed(terms: Any) -> bool:
    if not isinstance(terms, list) or not terms:
        return False
    for term in terms:
        if not isinstance(term, dict) or term.get("primitive") not in PRIMITIVES:
            return False
        known = {p.name for p in PRIMITIVES[term["primitive"]].params}
        if not isinstance(term.get("weight"), int | float) or not set(term.get("params", {})) <= known:
            return False
    return True


def _format_value(value: Any) -> str:
    return repr(value) if isinstance(value, bool | int) else repr(float(value))


def describe(genome: Genome) -> str:
    """A one-line human description: weighted primitives with their parameters."""
    parts = []
    for term in canonical(genome):
        primitive = PRIMITIVES[term["primitive"]]
        params = ", ".join(f"{k}={_format_value(v)}" for k, v in term["params"].items())
        parts.append(f"{term['weight']:.2f} x {primitive.phrase}" + (f" ({params})" if params else ""))
    return " + ".join(parts)


def render_source(name: str, genome: Genome) -> str:
    """The candidate module for `genome` with entry function `name`."""
    terms = canonical(genome)
    primitives = [PRIMITIVES[t["primitive"]] for t in terms]
    bodies = [*helpers_for(primitives), *(_source(p.function) for p in primitives)]
    calls = []
    for term, primitive in zip(terms, primitives, strict=True):
        args = "".join(f", {k}={_format_value(v)}" for k, v in term["params"].items())
        calls.append(f"        ({term['weight']!r}, {primitive.helper}(texts, questions, golds{args})),")
    imports = ["import math", "import re"]
    docstring = (
        f'"""Evolved reward {name}: {describe(terms)}.\n\n'
        "Each term scores a completion in [0, 1] (arithmetic may dip below 0); the reward is their weighted sum.\n"
        f"{_GENOME_PREFIX}{json.dumps(terms, sort_keys=True)}\n"
        '"""'
    )
    entry = "\n".join(
        [
            f"def {name}(prompts, completions, answer, **kwargs):",
            f'    """{describe(terms)}."""',
            "    prompts = list(prompts or [])",
            "    answer = list(answer or [])",
            "    texts = [_text(c) for c in completions]",
            '    questions = [_question(prompts[i]) if i < len(prompts) else "" for i in range(len(texts))]',
            '    golds = [str(answer[i]) if i < len(answer) else "" for i in range(len(texts))]',
            "    parts = [",
            *calls,
            "    ]",
            "    scores = []",
            "    for i in range(len(texts)):",
            "        total = sum(weight * values[i] for weight, values in parts)",
            "        scores.append(float(total) if math.isfinite(total) else 0.0)",
            "    return scores",
        ]
    )
    return "\n\n\n".join([docstring + "\n\n" + "\n".join(imports), *(b.strip() for b in bodies), entry]) + "\n"


class _Breeder:
    """Random genomes, mutations and crossovers, drawing only from one seeded RNG."""

    def __init__(self, config: ProposerConfig, rng: random.Random) -> None:
        self.evo = config.evolution
        self.rng = rng

    def _term(self, key: str) -> dict[str, Any]:
        primitive = PRIMITIVES[key]
        return {
            "primitive": key,
            "weight": round(self.rng.uniform(0.25, 2.0), 2),
            "params": {p.name: p.sample(self.rng) for p in primitive.params},
        }

    def fresh(self, avoid: Collection[str] = ()) -> Genome:
        """A random genome, drawn from the primitives not in `avoid` while enough of them are left."""
        size = self.rng.randint(self.evo.min_terms, self.evo.max_terms)
        unused = sorted(set(PRIMITIVES) - set(avoid))
        pool = unused if len(unused) >= size else sorted(PRIMITIVES)
        return [self._term(key) for key in self.rng.sample(pool, size)]

    def mutate(self, parent: Genome) -> Genome:
        scale = self.evo.mutation_scale
        child = []
        for term in canonical(parent):
            weight = term["weight"] * math.exp(self.rng.gauss(0.0, scale))
            specs: dict[str, Param] = {p.name: p for p in PRIMITIVES[term["primitive"]].params}
            params = {k: specs[k].mutate(v, self.rng, scale) for k, v in term["params"].items()}
            child.append({"primitive": term["primitive"], "weight": _clip_weight(weight), "params": params})
        if self.rng.random() < 0.3:
            child = self._restructure(child)
        return child

    def _restructure(self, terms: Genome) -> Genome:
        present = {t["primitive"] for t in terms}
        absent = sorted(set(PRIMITIVES) - present)
        moves = []
        if len(terms) < self.evo.max_terms and absent:
            moves.append("add")
        if len(terms) > self.evo.min_terms:
            moves.append("drop")
        if absent and len(terms) > 1:  # a swap keeps the others: a child always inherits one of its parent's terms
            moves.append("swap")
        if not moves:
            return terms
        move = self.rng.choice(moves)
        if move == "add":
            return [*terms, self._term(self.rng.choice(absent))]
        victim = self.rng.randrange(len(terms))
        rest = terms[:victim] + terms[victim + 1 :]
        return rest if move == "drop" else [*rest, self._term(self.rng.choice(absent))]

    def crossover(self, first: Genome, second: Genome) -> Genome:
        pool: dict[str, dict[str, Any]] = {}
        for term in canonical(first) + canonical(second):
            if term["primitive"] not in pool or self.rng.random() < 0.5:
                pool[term["primitive"]] = term
        keys = sorted(pool)
        size = self.rng.randint(min(self.evo.min_terms, len(keys)), min(self.evo.max_terms, len(keys)))
        return [dict(pool[key]) for key in self.rng.sample(keys, size)]


def _clip_weight(weight: float) -> float:
    return round(min(_WEIGHTS[1], max(_WEIGHTS[0], weight)), 2)


class EvolutionaryProposer(Proposer):
    """Offline proposer: composes, mutates and recombines reward primitives; needs no LLM and no network."""

    kind = "evolutionary"

    def __init__(self, config: ProposerConfig) -> None:
        super().__init__(config)
        self._seen: set[str] = set()  # genome keys already proposed, never proposed again

    def propose(self, feedback: Feedback, n: int, round: int) -> list[RewardCandidate]:
        call = self._next_call(round)
        breeder = _Breeder(self.config, random.Random(f"evolutionary:{self.config.seed}:{round}:{call}"))
        # The feedback's "no signal" runs (their reward gave every completion of a group the same score) taught
        # nothing: they are never parents, and a fresh genome draws first from primitives none of them used.
        flat = [e for e in feedback.ranked if no_signal(e)]
        learned = [e for e in feedback.ranked if not no_signal(e)]
        parents = [
            (entry.candidate_id, genome)
            for entry in breeding_pool(learned, feedback.metric)[: self.config.evolution.parents]
            if (genome := parse_genome(entry.source)) is not None
        ]
        seen = self._seen | {genome_key(g) for e in feedback.entries if (g := parse_genome(e.source)) is not None}
        fresh_count = n if not parents else min(n, round_half_up(n * self.config.evolution.fresh_fraction))
        candidates = []
        # primitives of flagged runs and of this batch's fresh genomes: the next fresh one draws from the others
        used = {t["primitive"] for e in flat if (g := parse_genome(e.source)) for t in g}
        for i in range(n):
            genome, lineage = self._unique(breeder, parents, seen, fresh=i >= n - fresh_count, avoid=used)
            if not lineage:
                used.update(t["primitive"] for t in genome)
            seen.add(genome_key(genome))
            self._seen.add(genome_key(genome))
            shorts = "_".join(PRIMITIVES[t["primitive"]].short for t in canonical(genome))
            name = f"evo_r{round}_{call}_{i}_{shorts}"
            how = "fresh random" if not lineage else ("crossover of" if len(lineage) > 1 else "mutation of")
            candidates.append(
                RewardCandidate(
                    name=name,
                    source=render_source(name, genome),
                    description=f"{describe(genome)} [{how}{' ' + ', '.join(lineage) if lineage else ''}]",
                    origin=Origin(proposer=self.kind, round=round, parents=lineage),
                )
            )
        self._usage.candidates += len(candidates)
        return candidates

    def _unique(
        self,
        breeder: _Breeder,
        parents: list[tuple[str, Genome]],
        seen: set[str],
        fresh: bool,
        avoid: Collection[str] = (),
    ) -> tuple[Genome, tuple[str, ...]]:
        """A genome not proposed before, bred from `parents` (rank-weighted) unless `fresh` (then from primitives
        not in `avoid`, so one batch's fresh rewards differ in what they reward), and its parents."""
        weights = [1.0 / (rank + 1) for rank in range(len(parents))]
        for attempt in range(_MAX_ATTEMPTS):
            if fresh or not parents or attempt >= _MAX_ATTEMPTS // 2:
                genome, lineage = breeder.fresh(avoid), ()
            elif len(parents) > 1 and breeder.rng.random() < self.config.evolution.crossover_rate:
                first, second = _pick_two(breeder.rng, parents, weights)
                genome, lineage = breeder.crossover(first[1], second[1]), (first[0], second[0])
            else:
                (parent_id, parent), *_ = breeder.rng.choices(parents, weights)
                genome, lineage = breeder.mutate(parent), (parent_id,)
            if genome_key(genome) not in seen:
                return canonical(genome), lineage
        raise RuntimeError("could not find an unproposed genome; the primitive library is exhausted")

    def state(self) -> dict[str, Any]:
        return {**super().state(), "seen": sorted(self._seen)}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._seen = set(state.get("seen", ()))


def breeding_pool(ranked: Sequence[LeaderboardEntry], metric: str) -> list[LeaderboardEntry]:
    """The ranked entries that may breed: under accuracy ranking, those not credibly worse than the best (their 95%
    interval reaches the best's accuracy), best first; the whole ranking otherwise or without intervals.

    Rank weights alone let a reward far below the best breed half as often as the best (the story task's round 1:
    0.43 and 0.02 dev accuracy, whose children ranked below their parent); a child of a reward that taught the
    model nothing inherits what it got wrong."""
    if metric != "accuracy" or not ranked or ranked[0].accuracy is None:
        return list(ranked)
    best = ranked[0].accuracy
    return [e for e in ranked if e is ranked[0] or e.ci_high is None or e.ci_high >= best]


def _pick_two(rng: random.Random, parents: list[tuple[str, Genome]], weights: list[float]):
    first = rng.choices(range(len(parents)), weights)[0]
    rest = [i for i in range(len(parents)) if i != first]
    second = rng.choices(rest, [weights[i] for i in rest])[0]
    return parents[first], parents[second]


def round_half_up(value: float) -> int:
    """Rounding that does not depend on banker's rounding (0.5 -> 1)."""
    return math.floor(value + 0.5)
