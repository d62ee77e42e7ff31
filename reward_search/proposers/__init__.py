"""Proposers write candidate reward functions: LLM (litellm), offline evolutionary, and the random control.

`make_proposer(config, ...)` builds the kind `config.kind` names; see `base.py` for the seam.
"""

from reward_search.proposers.base import (
    PROPOSERS,
    BudgetExhausted,
    Proposer,
    ProposerContext,
    ProposerError,
    ProposerUsage,
    make_proposer,
    register_proposer,
)
from reward_search.proposers.settings import EvolutionConfig, ProposerConfig

__all__ = [
    "PROPOSERS",
    "BudgetExhausted",
    "EvolutionConfig",
    "Proposer",
    "ProposerConfig",
    "ProposerContext",
    "ProposerError",
    "ProposerUsage",
    "make_proposer",
    "register_proposer",
]
