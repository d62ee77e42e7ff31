"""Per-question vectors as validated boolean arrays (one entry per question, the same order everywhere)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def bool_vector(values: ArrayLike) -> np.ndarray:
    """A non-empty 1-D boolean vector (booleans or 0/1 accepted)."""
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"expected a non-empty 1-D per-question vector, got shape {array.shape}")
    if array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            raise ValueError("per-question values must be booleans or 0/1")
        array = array.astype(bool)
    return array


def pair_vectors(correct: ArrayLike, extracted: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """(correct, extracted) as booleans; extracted defaults to correct, and a correct answer must be extracted."""
    c = bool_vector(correct)
    e = c.copy() if extracted is None else bool_vector(extracted)
    if e.size != c.size:
        raise ValueError(f"correct and extracted differ in length: {c.size} vs {e.size}")
    if np.any(c & ~e):
        raise ValueError("an item is marked correct but nothing was extracted")
    return c, e


def bool_matrix(correctness: Mapping[str, ArrayLike]) -> tuple[list[str], np.ndarray]:
    """Names and a (configurations × questions) boolean matrix; every configuration on the same questions."""
    names = list(correctness)
    if not names:
        raise ValueError("need at least one configuration")
    rows = [bool_vector(correctness[name]) for name in names]
    sizes = {row.size for row in rows}
    if len(sizes) != 1:
        raise ValueError(f"configurations were evaluated on different numbers of questions: {sorted(sizes)}")
    return names, np.stack(rows)


def align_by_ids(frames: Mapping[str, pd.DataFrame], id_column: str = "index") -> dict[str, pd.DataFrame]:
    """Each configuration's records in one shared question order, paired by question id, never by position.

    Raises ValueError naming the configurations when a frame lacks the id column, repeats an id, or covers
    different questions from the first configuration.
    """
    names = list(frames)
    if not names:
        return {}
    first = names[0]
    for name in names:
        frame = frames[name]
        if id_column not in frame:
            raise ValueError(f"records of {name!r} have no question-id column {id_column!r}: cannot pair them")
        repeated = frame[id_column][frame[id_column].duplicated()]
        if len(repeated):
            raise ValueError(f"records of {name!r} repeat question ids (e.g. {repeated.iloc[0]!r}): cannot pair them")
    order = sorted(frames[first][id_column].tolist())
    expected = set(order)
    for name in names[1:]:
        ids = set(frames[name][id_column].tolist())
        if ids != expected:
            only_first, only_other = sorted(expected - ids), sorted(ids - expected)
            raise ValueError(
                f"records of {first!r} and {name!r} cover different questions ({len(only_first)} ids only in "
                f"{first!r}, e.g. {only_first[:3]}; {len(only_other)} only in {name!r}, e.g. {only_other[:3]}): "
                "paired tests need the same questions"
            )
    return {name: frames[name].set_index(id_column).loc[order].reset_index() for name in names}
