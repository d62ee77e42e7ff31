"""Probe set construction and the probe report stored with a candidate."""

from __future__ import annotations

from reward_search.candidates.bank import default_bank
from reward_search.candidates.candidate import CandidateStore
from reward_search.candidates.probes import CORRECT_LABELS, WRONG_LABELS, _sample_items, probe_batches
from reward_search.candidates.sandbox import CandidateRunner
from reward_search.candidates.settings import CandidatesConfig, ProbeConfig
from reward_search.candidates.validation import validate_source
from reward_search.task.base_rewards import BASE_REWARDS
from reward_search.task.grading import extract_answer, is_correct


def test_probe_calls_are_training_shaped_groups_of_the_bank():
    bank = default_bank()
    calls = probe_batches(ProbeConfig(), bank, "some-id", 25)
    assert len(calls) == 25 and [b.check for b in calls[-2:]] == ["fresh", "fresh"]
    rows = {p.row for b in calls for p in b.probes if p.row >= 0}
    assert rows == set(range(bank.size))  # every bank completion is probed
    formats = {p.format for b in calls for p in b.probes}
    assert {"tags", "think", "empty", "very_long"} <= formats
    for batch in calls:
        per_group: dict[int, int] = {}
        for probe in batch.probes:
            per_group[probe.group] = per_group.get(probe.group, 0) + 1
        assert len(per_group) <= ProbeConfig().prompts_per_call
    assert probe_batches(ProbeConfig(), bank, "some-id", 25)[3].probes == calls[3].probes  # the same draws again


def test_labels_are_true_to_the_grader():
    from reward_search.candidates.probes import build_probes

    for item in _sample_items(4):
        probes = build_probes(item, ProbeConfig())
        for label in CORRECT_LABELS:
            assert is_correct(extract_answer(probes[label].text, "flexible"), item.answer)
        for label in WRONG_LABELS:
            assert not is_correct(extract_answer(probes[label].text, "flexible"), item.answer)
        assert is_correct(extract_answer(probes["correct_formatted"].text, "strict"), item.answer)
        assert probes["empty"].text == "" and len(probes["very_long"].text) >= ProbeConfig().long_completion_chars


def test_paper_style_answer_reward_is_accepted():
    """A candidate shaped like the paper's check_answer passes; our in-process base reward agrees on the labels."""
    source = (
        "import re\n"
        "def check(prompts, completions, answer, **kwargs):\n"
        "    out = []\n"
        "    for c, a in zip(completions, answer):\n"
        "        t = c if isinstance(c, str) else c[0]['content']\n"
        "        m = re.search(r'<solution>(.*?)</solution>', t, re.S)\n"
        "        out.append(3.0 if m and m.group(1).strip() == a else (0.0 if m is None else -1.5))\n"
        "    return out\n"
    )
    with CandidateRunner() as runner:
        verdict = validate_source(source, runner)
    assert verdict.accepted, verdict.reasons
    item = _sample_items(1)[0]
    from reward_search.candidates.probes import build_probes

    probes = build_probes(item, ProbeConfig())
    texts = [probes["correct_formatted"].text, probes["wrong_formatted"].text]
    correct, wrong = BASE_REWARDS["check_answer"]([], texts, answer=[item.answer] * 2)
    assert correct == 3.0 and wrong < correct  # a realistic slip may land within 10% of the gold: +1.0, not -1.5


def test_report_is_stored_with_the_candidate(tmp_path):
    source = (
        "def longer_is_better(prompts, completions, answer, **kwargs):\n"
        "    return [float(answer[i] in str(c)) for i, c in enumerate(completions)]\n"
    )
    with CandidateRunner() as runner:
        verdict = validate_source(source, runner, CandidatesConfig())
    assert verdict.accepted, verdict.reasons
    store = CandidateStore(tmp_path)
    store.save(verdict.candidate)
    stored = store.load(verdict.candidate.id)
    assert stored.status == "accepted"
    assert stored.probe["deterministic"] is True
    assert stored.probe["score_min"] <= stored.probe["mean_wrong"] <= stored.probe["mean_correct"]
    assert (
        stored.probe["calls"] >= CandidatesConfig().reprobe_every
        and stored.probe["prescreen"]["applicable"]
        and stored.probe["max_ms_per_completion"] >= 0
    )


def test_wrong_answers_are_realistic_and_graded_wrong_in_every_format():
    import random

    from reward_search.candidates.probe_texts import FORMATS, WRONG_KINDS, render, wrong_completion

    rng = random.Random(3)
    for item in _sample_items(8):
        reasoning = "\n".join(item.steps)
        for kind in WRONG_KINDS:
            wrong_reasoning, wrong = wrong_completion(item, kind, rng)
            assert wrong != item.answer and wrong in wrong_reasoning.splitlines()[-1]  # the last step states it
            assert abs(len(wrong_reasoning) - len(reasoning)) < 40  # same reasoning, not a truncated one
            for fmt in FORMATS:
                assert not is_correct(extract_answer(render(wrong_reasoning, wrong, fmt), "flexible"), item.answer)
                assert is_correct(extract_answer(render(reasoning, item.answer, fmt), "flexible"), item.answer)


def test_a_slip_propagates_through_later_steps():
    from reward_search.candidates.probe_texts import slipped

    item = _sample_items(1)[0]  # 6*9*14=756; 10-6=4; 4*12*9=432; 756+432=1188; 1188/12=99
    reasoning, final = slipped(item, step=1, delta=2)  # 10 - 6 = 6 instead of 4
    assert "10 - 6 = 6" in reasoning and "6 x 12 x 9 = 648" in reasoning and "756 + 648 = 1404" in reasoning
    assert final == "117"


PREFERS_WRONG_WHEN = (
    "import re\n"
    "def reward(prompts, completions, answer, **kwargs):\n"
    "    out = []\n"
    "    for c, a in zip(completions, answer):\n"
    "        t = c if isinstance(c, str) else c[-1]['content']\n"
    "        nums = re.findall(r'-?\\d+', t.replace(',', ''))\n"
    "        right = bool(nums) and nums[-1] == a\n"
    "        flip = {condition}\n"
    "        out.append(float(right != flip))\n"
    "    return out\n"
)


def test_a_preference_for_wrong_answers_on_one_question_is_only_a_warning():
    gold = default_bank().groups[0][0].answer
    with CandidateRunner() as runner:
        weak = validate_source(PREFERS_WRONG_WHEN.format(condition=f"a == {gold!r}"), runner)
        bad = validate_source(PREFERS_WRONG_WHEN.format(condition="True"), runner)
    assert weak.accepted, weak.reasons
    assert 0 < weak.probe["pairs_wrong_preferred"] < weak.probe["pairs"] / 2
    assert weak.warnings and "weak answer signal" in weak.warnings[0]
    assert not bad.accepted and "anti-correct" in bad.reasons[0] and "decisive pairs" in bad.reasons[0]
