"""The proposer kinds a config may name (`proposer.kind`), as one explicit table, and `make_proposer`.

The built-in kinds are listed here rather than registering themselves on import, so that `base.py` never imports
its subclasses. A proposer defined elsewhere (a plug-in, a test) joins with `register_proposer`. With
`proposer.planted` files the proposer is wrapped in `planted.PlantedProposer`, which offers them in round 1.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reward_search.proposers.base import Proposer, ProposerContext
from reward_search.proposers.evolutionary import EvolutionaryProposer
from reward_search.proposers.llm import LLMProposer
from reward_search.proposers.planted import PlantedProposer, read_planted
from reward_search.proposers.random import RandomProposer
from reward_search.proposers.settings import ProposerConfig

PROPOSERS: dict[str, type[Proposer]] = {cls.kind: cls for cls in (EvolutionaryProposer, LLMProposer, RandomProposer)}


def register_proposer(cls: type[Proposer]) -> type[Proposer]:
    """Class decorator: make a proposer defined outside this package selectable by `ProposerConfig.kind`."""
    PROPOSERS[cls.kind] = cls
    return cls


def make_proposer(config: ProposerConfig, context: ProposerContext | None = None, **fields: Any) -> Proposer:
    """The proposer `config.kind` names. `fields` are shortcuts for `ProposerContext` fields (e.g. ``train=``)."""
    context = dataclasses.replace(context or ProposerContext(), **fields)
    try:
        cls = PROPOSERS[config.kind]
    except KeyError:
        raise ValueError(
            f"unknown proposer kind {config.kind!r}; choose one of {', '.join(sorted(PROPOSERS))}"
        ) from None
    proposer = cls.create(config, context)
    return PlantedProposer(proposer, read_planted(config.planted)) if config.planted else proposer
