"""Train/dev/test splits: fractions by data-set size, exact part sizes, seeded stratified shuffles.

The size rule follows the course notes: small data (up to 100k examples) 60/20/20, around a million
98/1/1, above two million 99.5/0.25/0.25. The data are shuffled once with the seed and, for
classification, stratified so that dev and test come from the same class distribution as train. Each
class's count in each part is its proportional share rounded down or up, and the part sizes are
exactly those of :func:`split_sizes`. This module imports no TensorFlow.
"""

from __future__ import annotations

import os
import zipfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.device.errors import UserError
from recipes.rundir import temp_file

PARTS = ("train", "dev", "test")


def split_fractions(num_examples: int) -> tuple[float, float, float]:
    """Default (train, dev, test) fractions for a data set of ``num_examples`` examples.

    Args:
        num_examples: number of examples in the whole data set.

    Returns:
        ``(0.6, 0.2, 0.2)`` up to 100,000 examples, ``(0.98, 0.01, 0.01)`` up to 2,000,000, else
        ``(0.995, 0.0025, 0.0025)``.
    """
    if num_examples <= 100_000:
        return (0.6, 0.2, 0.2)
    if num_examples <= 2_000_000:
        return (0.98, 0.01, 0.01)
    return (0.995, 0.0025, 0.0025)


def split_sizes(num_examples: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Exact (train, dev, test) sizes: dev and test rounded from their fractions, train the rest.

    Each part gets at least one example; when rounding would leave train empty, the larger of dev and
    test gives one up.

    Args:
        num_examples: number of examples in the whole data set.
        fractions: ``(train, dev, test)`` fractions, each > 0, adding up to 1.

    Returns:
        ``(train, dev, test)`` sizes adding up to ``num_examples``.

    Raises:
        UserError: fewer than 3 examples, or fractions that are not three positive numbers adding up to 1.
    """
    _check_fractions(fractions)
    if num_examples < 3:
        raise UserError(f"{num_examples} example(s) cannot be split into train, dev and test; at least 3 are needed")
    dev = max(1, round(num_examples * fractions[1]))
    test = max(1, round(num_examples * fractions[2]))
    while num_examples - dev - test < 1:
        if dev >= test:
            dev -= 1
        else:
            test -= 1
    return (num_examples - dev - test, dev, test)


def _check_fractions(fractions: Sequence[float]) -> None:
    """Three positive fractions adding up to 1, else :class:`UserError`."""
    fractions = list(fractions)
    if len(fractions) != 3 or not all(part > 0 for part in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise UserError(
            f"split is three positive fractions train,dev,test adding up to 1, got {fractions}; "
            "e.g. --set split=0.8,0.1,0.1"
        )


@dataclass
class Split:
    """Index arrays of the three parts of a data set.

    Args:
        train: int64 indices of the training examples.
        dev: int64 indices of the dev (validation) examples.
        test: int64 indices of the test examples.
        stratified: whether class proportions were kept in each part.
    """

    train: np.ndarray
    dev: np.ndarray
    test: np.ndarray
    stratified: bool
    notes: tuple[str, ...] = ()

    def sizes(self) -> dict[str, int]:
        """Number of examples in each part, e.g. ``{"train": 600, "dev": 200, "test": 200}``."""
        return {part: len(getattr(self, part)) for part in PARTS}


def split_indices(labels: np.ndarray, fractions: Sequence[float], seed: int) -> Split:
    """Shuffle with ``seed`` and split into train, dev and test, stratified by class when possible.

    The split is stratified when every class has at least two examples and dev and test each hold at
    least one example per class; otherwise it is a plain shuffled split. Part sizes are exactly
    :func:`split_sizes`; the same labels, fractions and seed always give the same split.

    Args:
        labels: class label of each example, shape ``(n,)``.
        fractions: ``(train, dev, test)`` fractions adding up to 1.
        seed: seed of the shuffle.

    Returns:
        Disjoint parts that together cover ``0 .. n - 1``, each in shuffled order.
    """
    labels = np.asarray(labels).reshape(-1)
    sizes = split_sizes(len(labels), fractions)
    generator = np.random.default_rng(seed)
    classes, class_of_example, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    stratify = class_counts.min() >= 2 and min(sizes[1], sizes[2]) >= len(classes)
    if not stratify:
        order = generator.permutation(len(labels))
        boundaries = np.cumsum(sizes)[:-1]
        return Split(*np.split(order.astype(np.int64), boundaries), stratified=False)
    part_counts = stratified_counts(class_counts, sizes, generator)
    by_class = np.split(np.argsort(class_of_example, kind="stable"), np.cumsum(class_counts)[:-1])
    parts: list[list[np.ndarray]] = [[], [], []]
    for members, counts in zip(by_class, part_counts, strict=True):
        members = generator.permutation(members)
        for part, chunk in enumerate(np.split(members, np.cumsum(counts)[:-1])):
            parts[part].append(chunk)
    train, dev, test = (generator.permutation(np.concatenate(chunks)).astype(np.int64) for chunks in parts)
    return Split(train=train, dev=dev, test=test, stratified=True)


def group_split(labels: np.ndarray, groups: np.ndarray, fractions: Sequence[float], seed: int) -> Split:
    """Split whole groups (the recordings of a stream's windows): no group has examples in two parts.

    Each group counts under its most common label. The groups of each label are shuffled with ``seed`` and
    dealt, largest first, to the part furthest below its share of that label's examples (the part sizes of
    :func:`split_sizes`), after dev and test have one group each where the label has three or more; so the
    parts hold every label as far as the groups allow and come near the usual sizes.

    Args:
        labels: label (or stratum) of each example.
        groups: group index of each example.
        fractions: ``(train, dev, test)`` fractions adding up to 1.
        seed: seed of the shuffles.

    Returns:
        The parts (``stratified`` when every part holds every label), with ``notes`` saying what could not be
        kept.

    Raises:
        UserError: fewer than three groups.
    """
    labels, groups = np.asarray(labels).reshape(-1), np.asarray(groups).reshape(-1)
    sizes = np.asarray(split_sizes(len(labels), fractions), np.float64)
    names = np.unique(groups)
    if len(names) < 3:
        raise UserError(
            f"the data holds {len(names)} recording(s); a split that keeps recordings apart needs at least 3 "
            "(one each for train, dev and test): add recordings, or name them with --group COLUMN"
        )
    generator = np.random.default_rng(seed)
    members = {name: np.flatnonzero(groups == name) for name in names}
    label_of = {name: _most_common(labels[members[name]]) for name in names}
    by_label: dict[object, list] = {}
    for name in names:
        by_label.setdefault(label_of[name], []).append(name)
    rare = sorted((label for label, own in by_label.items() if len(own) < 3), key=str)
    pools = [own for label, own in sorted(by_label.items(), key=lambda item: str(item[0])) if label not in rare]
    pools.append([name for label in rare for name in by_label[label]])  # labels too rare to stratify: dealt together
    notes = []
    if rare:
        shown = ", ".join(f"'{label}'" for label in rare[:5]) + (", ..." if len(rare) > 5 else "")
        notes.append(
            f"{len(rare)} label(s) have fewer than 3 recordings ({shown}): not every split holds each of them "
            "(add recordings)"
        )
    parts: list[list[np.ndarray]] = [[], [], []]
    for pool in pools:
        pool = [pool[i] for i in generator.permutation(len(pool))]
        pool.sort(key=lambda name: -len(members[name]))
        total = sum(len(members[name]) for name in pool)
        wanted = sizes / sizes.sum() * total
        taken = np.zeros(3)
        if len(pool) >= 3:  # one group each for dev and test first: the smallest ones
            for part, name in ((2, pool[-1]), (1, pool[-2])):
                parts[part].append(members[name])
                taken[part] += len(members[name])
            pool = pool[:-2]
        for name in pool:
            part = int(np.argmax(wanted - taken))
            parts[part].append(members[name])
            taken[part] += len(members[name])
    train, dev, test = (
        generator.permutation(np.concatenate(chunks)).astype(np.int64) if chunks else np.zeros(0, np.int64)
        for chunks in parts
    )
    if not len(dev) or not len(test):
        raise UserError(
            "the recordings cannot fill train, dev and test (one label per recording and too few of them); add "
            "recordings"
        )
    stratified = not notes and all(set(labels[part].tolist()) == set(labels.tolist()) for part in (train, dev, test))
    return Split(train, dev, test, stratified, tuple(notes))


def _most_common(values: np.ndarray) -> object:
    unique, counts = np.unique(values, return_counts=True)
    return unique[int(np.argmax(counts))].item()


def anomaly_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> Split:
    """Split for anomaly detection: the training part holds normal examples only.

    The normal examples (label 0) are split by ``fractions`` exactly as :func:`split_indices` would;
    the anomalies (any other label) go to dev and test only, in the ratio of the dev and test
    fractions (at least one in each), so the threshold can be chosen on dev and judged on test.

    Args:
        labels: 0 for normal, anything else for an anomaly, shape ``(n,)``.
        fractions: ``(train, dev, test)`` fractions adding up to 1.
        seed: seed of the shuffles.

    Returns:
        Disjoint parts that together cover ``0 .. n - 1``, each in shuffled order (not stratified).

    Raises:
        UserError: fewer than two anomalies, or fewer than three normal examples.
    """
    labels = np.asarray(labels).reshape(-1)
    normal, anomalous = np.flatnonzero(labels == 0), np.flatnonzero(labels != 0)
    if len(anomalous) < 2:
        raise UserError(
            f"anomaly detection needs at least two anomalous examples (one for dev to choose the threshold, "
            f"one for test), got {len(anomalous)}; add examples of a class other than the normal one"
        )
    normal_split = split_indices(np.zeros(len(normal)), fractions, seed)
    generator = np.random.default_rng([seed, 1])
    anomalous = generator.permutation(anomalous)
    to_dev = round(len(anomalous) * fractions[1] / (fractions[1] + fractions[2]))
    to_dev = min(max(to_dev, 1), len(anomalous) - 1)
    dev = generator.permutation(np.concatenate([normal[normal_split.dev], anomalous[:to_dev]]))
    test = generator.permutation(np.concatenate([normal[normal_split.test], anomalous[to_dev:]]))
    return Split(
        train=normal[normal_split.train], dev=dev.astype(np.int64), test=test.astype(np.int64), stratified=False
    )


def stratified_counts(class_counts: np.ndarray, sizes: Sequence[int], generator: np.random.Generator) -> np.ndarray:
    """How many examples of each class go to each part.

    Every entry is the class's proportional share ``class_count * size / total`` rounded down or up,
    every row adds up to the class count and every column to the part size (a controlled rounding,
    found as a bipartite b-matching). Ties between equal remainders are broken by ``generator``.

    Args:
        class_counts: examples per class, shape ``(k,)``.
        sizes: examples per part, adding up to ``class_counts.sum()``.
        generator: random generator for tie-breaking.

    Returns:
        int64 array of shape ``(k, len(sizes))``.
    """
    class_counts = np.asarray(class_counts, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(class_counts.sum())
    scaled = np.outer(class_counts, sizes)  # share * total, exact in integers
    counts, remainders = scaled // total, scaled % total
    round_up = _round_up_cells(remainders, class_counts - counts.sum(axis=1), sizes - counts.sum(axis=0), generator)
    return counts + round_up


def _round_up_cells(
    remainders: np.ndarray, row_needs: np.ndarray, column_needs: np.ndarray, generator: np.random.Generator
) -> np.ndarray:
    """Choose cells with a positive remainder so that row r gets row_needs[r] and column c column_needs[c].

    Greedy by largest remainder first, then augmenting paths for the rows left short. A solution
    exists because ``remainders / total`` is a fractional one with the same sums.
    """
    chosen = np.zeros(remainders.shape, dtype=np.int64)
    rows_left, columns_left = row_needs.copy(), column_needs.copy()
    tie_break = generator.random(remainders.shape)
    for flat in np.lexsort((tie_break.ravel(), -remainders.ravel())):
        row, column = np.unravel_index(flat, remainders.shape)
        if remainders[row, column] > 0 and rows_left[row] > 0 and columns_left[column] > 0:
            chosen[row, column] = 1
            rows_left[row] -= 1
            columns_left[column] -= 1
    for row in np.flatnonzero(rows_left):
        for _ in range(rows_left[row]):
            _augment(chosen, remainders > 0, columns_left, row)
    return chosen


def _augment(chosen: np.ndarray, allowed: np.ndarray, columns_left: np.ndarray, start_row: int) -> None:
    """Give ``start_row`` one more chosen cell, shifting other rows' choices along a shortest path.

    Breadth-first search alternates "row takes a free allowed column" and "column's current holder
    row moves on", ending at a column with room left.
    """
    came_from: dict[tuple[str, int], tuple[str, int] | None] = {("row", start_row): None}
    queue = deque([start_row])
    while queue:
        row = queue.popleft()
        for column in np.flatnonzero(allowed[row] & (chosen[row] == 0)):
            if ("column", column) in came_from:
                continue
            came_from[("column", column)] = ("row", row)
            if columns_left[column] > 0:
                columns_left[column] -= 1
                _flip_path(chosen, came_from, column)
                return
            for holder in np.flatnonzero(chosen[:, column]):
                if ("row", holder) not in came_from:
                    came_from[("row", holder)] = ("column", column)
                    queue.append(holder)
    raise RuntimeError("no stratified rounding found")  # impossible: a fractional solution exists


def _flip_path(chosen: np.ndarray, came_from: dict, end_column: int) -> None:
    """Walk the search path back from ``end_column``: take each row->column edge, drop each column->row."""
    node = ("column", end_column)
    while came_from[node] is not None:
        previous = came_from[node]
        if node[0] == "column":
            chosen[previous[1], node[1]] = 1
        else:
            chosen[node[1], previous[1]] = 0
        node = previous


def save_split(path: str | Path, split: Split) -> None:
    """Write ``split`` to an ``.npz`` file (arrays train, dev, test, stratified), atomically.

    Args:
        path: destination file, written as given (no suffix added).
        split: the split to save.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = temp_file(path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, train=split.train, dev=split.dev, test=split.test, stratified=np.array(split.stratified))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_split(path: str | Path) -> Split:
    """Read a split written by :func:`save_split`.

    Args:
        path: the ``.npz`` file.

    Raises:
        UserError: the file is missing, unreadable, lacks one of the arrays train, dev, test, or holds an index
            that is negative or in two places (the upper bound is checked against the data by whoever reads it).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"split file {path} does not exist; pass the split.npz of a training run")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise UserError(f"split file {path} is not a readable .npz file; write it with save_split") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"split file {path} holds a single array; write it with save_split")
    with archive:
        missing = [part for part in PARTS if part not in archive.files]
        if missing:
            raise UserError(
                f"split file {path} has no array {', '.join(missing)} "
                f"(arrays: {', '.join(archive.files)}); write it with save_split"
            )
        try:
            parts = {part: archive[part].astype(np.int64) for part in PARTS}
        except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile):  # objects, text, a cut file
            raise UserError(
                f"split file {path} does not hold integer arrays train, dev, test (damaged or not written by "
                "training); train again"
            ) from None
        stratified = bool(archive["stratified"]) if "stratified" in archive.files else False
    indices = np.concatenate([parts[part].reshape(-1) for part in PARTS])
    if any(parts[part].ndim != 1 for part in PARTS) or (indices < 0).any() or len(np.unique(indices)) < len(indices):
        raise UserError(
            f"split file {path} holds negative, repeated or nested example indices (numpy would read a negative one "
            "from the end: the wrong rows); train again"
        )
    return Split(**parts, stratified=stratified)
