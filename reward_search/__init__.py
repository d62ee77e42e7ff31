"""reward-search: search for reward functions for GRPO post-training of language models."""

__version__ = "0.1.0"
