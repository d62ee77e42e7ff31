"""Probe set construction and the probe report stored with a candidate."""

from __future__ import annotations

from reward_search.candidates.candidate import CandidateStore
from reward_search.candidates.probes import CORRECT_LABELS, LABELS, WRONG_LABELS, _sample_items, probe_batches
from reward_search.candidates.sandbox import CandidateRunner
from reward_search.candidates.settings import CandidatesConfig, ProbeConfig
from reward_search.candidates.validation import validate_source
from reward_search.task.base_rewards import BASE_REWARDS
from reward_search.task.grading import extract_answer, is_correct


def test_probe_set_covers_labels_shapes_and_sizes():
    batches = probe_batches(ProbeConfig())
    sizes = {len(b.probes) for b in batches}
    assert {1, 16} <= sizes
    assert any(b.chat for b in batches) and any(not b.chat for b in batches)
    labels = {p.label for b in batches for p in b.probes}
    assert labels == set(LABELS)


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
    assert stored.probe["calls"] >= 8 and stored.probe["max_ms_per_completion"] >= 0
