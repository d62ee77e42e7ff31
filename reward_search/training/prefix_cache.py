"""A shared prompt prefix computed once: the key/value cache of the tokens every evaluation prompt starts with.

Every prompt of an evaluation opens with the same chat-template header and system prompt (84 of about 150 prompt
tokens for the embedded model). Generation and the gold log-probability pass both recompute it for every question;
on CPU, where a forward pass is compute-bound, that is about a third of an evaluation. Here the prefix runs once per
evaluation (under the evaluated weights, so an adapter's effect on it is kept) and each batch starts from a copy.

Rows keep their own padding *after* the prefix: `[prefix][pads][question ...]`, with the attention mask zero on
the pads and position ids counted over real tokens only, so each row sees exactly the positions and context it
would see unpadded. Values agree with the uncached pass to float rounding (different matmul shapes).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# A prefix shorter than this is not worth a separate forward pass and a cache copy per batch.
MIN_PREFIX_TOKENS = 8


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """The number of leading token ids all `sequences` share, leaving every sequence at least one token of its own
    (a row must feed the model something after the cached part)."""
    if not sequences:
        return 0
    shortest = min(len(s) for s in sequences)
    first = sequences[0]
    length = 0
    while length < shortest - 1 and all(s[length] == first[length] for s in sequences):
        length += 1
    return length


@dataclass
class SharedPrefix:
    """The prefix's token ids and its key/value cache for one row; `batch_cache(n)` gives a fresh copy for n rows."""

    ids: list[int]
    cache: Any

    def __len__(self) -> int:
        return len(self.ids)

    def batch_cache(self, rows: int) -> Any:
        cache = copy.deepcopy(self.cache)
        if rows > 1:
            cache.batch_repeat_interleave(rows)
        return cache


def shared_prefix(model: Any, sequences: Sequence[Sequence[int]], device: str) -> SharedPrefix | None:
    """The cached common prefix of `sequences` under `model`'s current weights, or None when it is too short or
    the model keeps no reusable cache."""
    import torch

    length = common_prefix_length(sequences)
    if length < MIN_PREFIX_TOKENS:
        return None
    ids = list(sequences[0][:length])
    with torch.inference_mode():
        output = model(input_ids=torch.tensor([ids], device=device), use_cache=True)
    cache = getattr(output, "cache", None)
    if cache is None or not hasattr(cache, "batch_repeat_interleave"):
        return None
    return SharedPrefix(ids=ids, cache=cache)


def padded_after_prefix(prefix: SharedPrefix, rests: Sequence[Sequence[int]], pad_id: int) -> dict[str, Any]:
    """Full input ids, attention mask and position ids for rows `[prefix][pads][rest]` (rests left-padded)."""
    import torch

    width = max(len(r) for r in rests)
    n = len(prefix)
    input_ids = torch.full((len(rests), n + width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rests), n + width), dtype=torch.long)
    input_ids[:, :n] = torch.tensor(prefix.ids, dtype=torch.long)
    mask[:, :n] = 1
    for row, rest in enumerate(rests):
        input_ids[row, n + width - len(rest) :] = torch.tensor(list(rest), dtype=torch.long)
        mask[row, n + width - len(rest) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": input_ids, "attention_mask": mask, "position_ids": positions}
