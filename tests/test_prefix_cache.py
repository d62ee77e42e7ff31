"""The shared prompt prefix: computed once, it changes neither the greedy completions nor the gold log-probabilities."""

from __future__ import annotations

import pytest

from reward_search.task import render_prompt
from reward_search.task.gsm8k import GSM8KTask
from reward_search.training.evaluation import generate_batched
from reward_search.training.gold_logprob import gold_logprobs
from reward_search.training.prefix_cache import MIN_PREFIX_TOKENS, common_prefix_length, shared_prefix


@pytest.fixture(scope="module")
def problems():
    return GSM8KTask().load_splits().dev[:7]


def test_common_prefix_leaves_every_sequence_a_token_of_its_own():
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # identical rows still feed the model one token
    assert common_prefix_length([[7, 8, 9]]) == 2
    assert common_prefix_length([[1, 2], [3, 4]]) == 0
    assert common_prefix_length([]) == 0


def test_the_prefix_is_the_chat_opening_and_short_ones_are_not_cached(tiny, problems):
    task = GSM8KTask()
    ids = [tiny.tokenizer(render_prompt(tiny.tokenizer, task.messages(p.question)))["input_ids"] for p in problems]
    prefix = shared_prefix(tiny.model, ids, tiny.device)
    assert prefix is not None and len(prefix) >= MIN_PREFIX_TOKENS
    assert all(row[: len(prefix)] == prefix.ids for row in ids)
    assert len({row[len(prefix)] for row in ids}) > 1  # it stops where the questions begin
    assert prefix.batch_cache(3).get_seq_length() == len(prefix)
    assert shared_prefix(tiny.model, [[*row[:4], 1] for row in ids], tiny.device) is None


def test_generation_from_the_shared_prefix_matches_the_full_prompts(tiny, problems):
    task = GSM8KTask()
    prompts = [render_prompt(tiny.tokenizer, task.messages(p.question)) for p in problems]
    shared = generate_batched(tiny, prompts, max_new_tokens=10, batch_size=4)
    full = generate_batched(tiny, prompts, max_new_tokens=10, batch_size=4, share_prefix=False)
    single = generate_batched(tiny, prompts[:1], max_new_tokens=10, batch_size=1)
    assert [g.text for g in shared] == [g.text for g in full]
    assert [g.tokens for g in shared] == [g.tokens for g in full]
    assert single[0].text == full[0].text  # one prompt: the prefix is all but its last token


def test_gold_logprobs_from_the_shared_prefix_match_the_full_pass(tiny, problems):
    task = GSM8KTask()
    shared = gold_logprobs(tiny, task, problems, batch_size=3)
    full = gold_logprobs(tiny, task, problems, batch_size=3, share_prefix=False)
    assert len(set(full)) > 1
    assert shared == pytest.approx(full, abs=1e-5)
    assert gold_logprobs(tiny, task, problems[:1], batch_size=1) == pytest.approx(full[:1], abs=1e-5)


def test_generation_caches_give_the_gold_logprobs_without_a_second_prompt_pass(tiny, problems):
    from reward_search.config import EvalConfig
    from reward_search.training.evaluation import evaluate
    from reward_search.training.gold_logprob import target_ids

    task = GSM8KTask()
    prompts = [render_prompt(tiny.tokenizer, task.messages(p.question)) for p in problems]
    targets = target_ids(tiny.tokenizer, problems)
    reference = gold_logprobs(tiny, task, problems, batch_size=3, share_prefix=False)
    generations = generate_batched(tiny, prompts, max_new_tokens=6, batch_size=4, targets=targets, target_rows=3)
    assert all(g.gold_logprob is not None for g in generations)  # every batch reused its cache
    assert [g.gold_logprob for g in generations] == pytest.approx(reference, abs=1e-5)
    plain = generate_batched(tiny, prompts, max_new_tokens=6, batch_size=4)
    assert [g.text for g in generations] == [g.text for g in plain]  # the completions are untouched
    for generation in ("hf", "fast"):  # fast: a static cache cannot be cut back, so the standalone pass runs
        result = evaluate(tiny, task, problems, EvalConfig(batch_size=4, max_new_tokens=6), False, generation)
        assert [r["gold_logprob"] for r in result.records] == pytest.approx(reference, abs=1e-5)
