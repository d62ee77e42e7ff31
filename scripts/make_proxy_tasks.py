"""Write the proxy tasks shipped with the package: small arithmetic families on which the embedded 135M model starts
low under strict grading and a few minutes of GRPO move its accuracy (issue "The search, shown to work").

Deterministic: every family draws from its own `random.Random(f"{family}:{seed}")`, so the same seed writes the
same bytes. Each family gets disjoint `train.jsonl`, `dev.jsonl` and `test.jsonl` (no question in two splits),
rows `{"question", "answer", "solution"}` as `data.source: jsonl` reads them.

    python scripts/make_proxy_tasks.py [--seed 0] [--out reward_search/task/data/proxy]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

Row = dict[str, object]
SIZES = {"train": 1000, "dev": 200, "test": 200}
NAMES = ("Ana", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana", "Ivo", "Jin", "Kai", "Lia", "Max", "Noa")
ITEMS = ("apples", "books", "coins", "pens", "cards", "shells", "stickers", "marbles", "stamps", "cookies")


def sums(rng: random.Random) -> Row:
    """Two-digit sums: "What is 26 + 43?" (answer 69)."""
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return {"question": f"What is {a} + {b}?", "answer": a + b, "solution": f"{a} + {b} = {a + b}"}


def story(rng: random.Random) -> Row:
    """One-step word problems on small counts: a gain or a loss, the answer one addition or subtraction away."""
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    start, change = rng.randint(5, 40), rng.randint(2, 20)
    if rng.random() < 0.5:
        question = f"{name} has {start} {item} and gets {change} more. How many {item} does {name} have now?"
        answer, working = start + change, f"{start} + {change} = {start + change}"
    else:
        start += change
        question = f"{name} has {start} {item} and gives away {change}. How many {item} does {name} have left?"
        answer, working = start - change, f"{start} - {change} = {start - change}"
    return {"question": question, "answer": answer, "solution": working}


def differences(rng: random.Random) -> Row:
    """Two-digit differences with a positive result: "What is 83 - 47?" (answer 36)."""
    a, b = sorted(rng.sample(range(10, 100), 2), reverse=True)
    return {"question": f"What is {a} - {b}?", "answer": a - b, "solution": f"{a} - {b} = {a - b}"}


FAMILIES: dict[str, Callable[[random.Random], Row]] = {"sums": sums, "story": story, "differences": differences}
SYSTEM = (
    "Solve the problem. Write your working between <thinking> and </thinking>, then only the final number between "
    "<solution> and </solution>."
)
# One worked example turn per family (`prompt.json`, read by data.prompt_file): with it the 135M model writes the
# tags in some answers; without it, strict accuracy stayed 0 even after training (results/proxy_tasks.json).
# None of these questions is in any split.
EXAMPLES = {
    "sums": ("What is 35 + 27?", "35 + 27 = 62", 62),
    "story": ("Mia has 23 pens and gets 9 more. How many pens does Mia have now?", "23 + 9 = 32", 32),
    "differences": ("What is 71 - 38?", "71 - 38 = 33", 33),
}


def prompt_file(family: str) -> dict[str, object]:
    question, working, answer = EXAMPLES[family]
    response = f"<thinking>{working}</thinking>\n<solution>{answer}</solution>"
    return {"system": SYSTEM, "examples": [{"question": question, "response": response}]}


def family_splits(family: str, seed: int) -> dict[str, list[Row]]:
    """Disjoint splits of one family: questions are drawn until each split is full, a repeat is skipped."""
    make, rng = FAMILIES[family], random.Random(f"{family}:{seed}")
    seen: set[str] = {EXAMPLES[family][0]}  # the prompt's example turn is in no split
    splits: dict[str, list[Row]] = {}
    for split, size in SIZES.items():
        rows: list[Row] = []
        while len(rows) < size:
            row = make(rng)
            if row["question"] not in seen:
                seen.add(str(row["question"]))
                rows.append(row)
        splits[split] = rows
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("reward_search/task/data/proxy"))
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated: " + ", ".join(FAMILIES))
    args = parser.parse_args()
    for family in args.families.split(","):
        folder = args.out / family
        folder.mkdir(parents=True, exist_ok=True)
        for split, rows in family_splits(family, args.seed).items():
            text = "".join(json.dumps(row) + "\n" for row in rows)
            (folder / f"{split}.jsonl").write_text(text, encoding="utf-8")
        (folder / "prompt.json").write_text(json.dumps(prompt_file(family), indent=2) + "\n", encoding="utf-8")
        print(f"{folder}: " + ", ".join(f"{split} {size}" for split, size in SIZES.items()))


if __name__ == "__main__":
    main()
