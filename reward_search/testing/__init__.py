"""Helpers for the tests and benchmarks, never used by the service itself: a throwaway local Ray head
(`local_head`), GRPO advantages as pure functions to check TRL against (`advantages`), and canned LLM replies for the
LLM proposer (`llm`). No other module of the package imports this one (`tests/test_import_layers.py` checks).
"""
