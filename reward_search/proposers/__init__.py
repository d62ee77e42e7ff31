"""Proposers write candidate reward functions: LLM (litellm), offline evolutionary, and the random control.

`registry.make_proposer(config, ...)` builds the kind `config.kind` names; `base.py` is the seam, `feedback.py`
what a proposer is told about earlier rounds, `settings.py` the config section. This file imports nothing, so that
`reward_search.config` can import `proposers.settings` without loading the proposers themselves.
"""
