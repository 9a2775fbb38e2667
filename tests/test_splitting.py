"""Train/dev/test splits: the seed's size rule, exact sizes, stratification, determinism, files."""

from __future__ import annotations

import numpy as np
import pytest

from edge.device.errors import UserError
from recipes.splitting import (
    Split,
    load_split,
    save_split,
    split_fractions,
    split_indices,
    split_sizes,
    stratified_counts,
)


@pytest.mark.parametrize(
    ("num_examples", "expected_fractions", "expected_sizes"),
    [
        (1_000, (0.6, 0.2, 0.2), (600, 200, 200)),
        (100_000, (0.6, 0.2, 0.2), (60_000, 20_000, 20_000)),
        (1_000_000, (0.98, 0.01, 0.01), (980_000, 10_000, 10_000)),
        (2_000_000, (0.98, 0.01, 0.01), (1_960_000, 20_000, 20_000)),
        (5_000_000, (0.995, 0.0025, 0.0025), (4_975_000, 12_500, 12_500)),
    ],
)
def test_size_rule_from_the_seed(num_examples, expected_fractions, expected_sizes):
    fractions = split_fractions(num_examples)
    assert fractions == expected_fractions
    assert split_sizes(num_examples, fractions) == expected_sizes


def test_user_fractions_override_the_rule():
    assert split_sizes(1_000, (0.8, 0.1, 0.1)) == (800, 100, 100)
    assert split_sizes(1_797, (0.7, 0.15, 0.15)) == (1_257, 270, 270)


def test_tiny_data_sets_keep_every_part_non_empty():
    assert split_sizes(3, (0.6, 0.2, 0.2)) == (1, 1, 1)
    assert split_sizes(4, (0.6, 0.2, 0.2)) == (2, 1, 1)
    # dev and test would round to 2 + 1 of 3 examples; dev gives one back so train is not empty
    assert split_sizes(3, (0.02, 0.5, 0.48)) == (1, 1, 1)


@pytest.mark.parametrize("num_examples", [0, 1, 2])
def test_fewer_than_three_examples_is_a_user_error(num_examples):
    with pytest.raises(UserError, match="at least 3"):
        split_sizes(num_examples, (0.6, 0.2, 0.2))


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.8, 0.2, 0.0), (0.6, 0.3, 0.3), (1.2, -0.1, -0.1)])
def test_bad_fractions_are_a_user_error(fractions):
    with pytest.raises(UserError, match="split=0.8,0.1,0.1"):
        split_sizes(100, fractions)


def _class_counts(labels: np.ndarray, indices: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(labels[indices], minlength=num_classes)


def test_stratified_split_keeps_class_proportions_within_one_example():
    # 3 classes of 500, 300 and 200 examples: 60/20/20 shares are exact except where rounding is needed
    labels = np.repeat([0, 1, 2], [500, 300, 200])
    split = split_indices(labels, (0.6, 0.2, 0.2), seed=0)
    assert split.stratified
    assert split.sizes() == {"train": 600, "dev": 200, "test": 200}
    assert _class_counts(labels, split.train, 3).tolist() == [300, 180, 120]
    assert _class_counts(labels, split.dev, 3).tolist() == [100, 60, 40]
    assert _class_counts(labels, split.test, 3).tolist() == [100, 60, 40]


def test_stratified_split_of_uneven_classes_is_within_one_example_per_class():
    labels = np.repeat(np.arange(7), [13, 101, 57, 2, 250, 9, 31])
    for seed in range(5):
        split = split_indices(labels, (0.7, 0.15, 0.15), seed=seed)
        assert split.stratified
        assert tuple(split.sizes().values()) == split_sizes(len(labels), (0.7, 0.15, 0.15))
        class_totals = np.bincount(labels)
        for part in (split.train, split.dev, split.test):
            share = class_totals * len(part) / len(labels)
            assert np.abs(_class_counts(labels, part, 7) - share).max() < 1


def test_stratified_counts_round_every_share_down_or_up():
    generator = np.random.default_rng(0)
    for _ in range(300):
        class_counts = generator.integers(2, 50, size=generator.integers(2, 30))
        sizes = split_sizes(int(class_counts.sum()), (0.6, 0.2, 0.2))
        counts = stratified_counts(class_counts, sizes, generator)
        shares = np.outer(class_counts, sizes) / class_counts.sum()
        assert counts.sum(axis=1).tolist() == class_counts.tolist()
        assert counts.sum(axis=0).tolist() == list(sizes)
        assert (counts >= np.floor(shares)).all() and (counts <= np.ceil(shares)).all()


def test_split_is_disjoint_and_complete():
    labels = np.random.default_rng(1).integers(0, 4, size=1_000)
    split = split_indices(labels, (0.6, 0.2, 0.2), seed=3)
    together = np.concatenate([split.train, split.dev, split.test])
    assert together.dtype == np.int64
    assert np.array_equal(np.sort(together), np.arange(1_000))


def test_same_seed_same_split_other_seed_other_split():
    labels = np.random.default_rng(2).integers(0, 3, size=500)
    first = split_indices(labels, (0.6, 0.2, 0.2), seed=7)
    again = split_indices(labels, (0.6, 0.2, 0.2), seed=7)
    other = split_indices(labels, (0.6, 0.2, 0.2), seed=8)
    for part in ("train", "dev", "test"):
        assert np.array_equal(getattr(first, part), getattr(again, part))
    assert not np.array_equal(first.dev, other.dev)


def test_split_is_shuffled_not_in_data_order():
    labels = np.repeat([0, 1], 500)
    split = split_indices(labels, (0.6, 0.2, 0.2), seed=0)
    assert not np.array_equal(split.train, np.sort(split.train))


def test_falls_back_to_plain_shuffle_when_a_class_has_one_example():
    labels = np.array([0] * 50 + [1] * 49 + [2])
    split = split_indices(labels, (0.6, 0.2, 0.2), seed=0)
    assert not split.stratified
    assert split.sizes() == {"train": 60, "dev": 20, "test": 20}


def test_falls_back_to_plain_shuffle_when_dev_is_smaller_than_the_class_count():
    labels = np.repeat(np.arange(10), 3)  # 30 examples, dev = test = 6 < 10 classes
    split = split_indices(labels, (0.6, 0.2, 0.2), seed=0)
    assert not split.stratified
    assert split.sizes() == {"train": 18, "dev": 6, "test": 6}


def test_string_labels_are_stratified_too():
    labels = np.array(["cat"] * 60 + ["dog"] * 40)
    split = split_indices(labels, (0.6, 0.2, 0.2), seed=0)
    assert split.stratified
    assert (labels[split.dev] == "cat").sum() == 12


def test_save_and_load_round_trip(tmp_path):
    split = split_indices(np.repeat([0, 1, 2], 20), (0.8, 0.1, 0.1), seed=0)
    path = tmp_path / "run" / "split.npz"
    save_split(path, split)
    loaded = load_split(path)
    assert isinstance(loaded, Split)
    assert loaded.stratified is True
    assert loaded.sizes() == {"train": 48, "dev": 6, "test": 6}
    for part in ("train", "dev", "test"):
        assert np.array_equal(getattr(loaded, part), getattr(split, part))
    assert [file.name for file in path.parent.iterdir()] == ["split.npz"]  # no temporary file left


def test_load_split_errors_name_the_problem(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_split(tmp_path / "missing.npz")
    partial = tmp_path / "partial.npz"
    np.savez(partial, train=np.arange(3))
    with pytest.raises(UserError, match="no array dev, test"):
        load_split(partial)
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not an archive")
    with pytest.raises(UserError, match="garbage.npz"):
        load_split(garbage)
    objects = tmp_path / "objects.npz"  # an array of Python objects is never unpickled
    np.savez(objects, train=np.array([{"a": 1}], dtype=object), dev=np.arange(2), test=np.arange(2))
    with pytest.raises(UserError, match="does not hold integer arrays train, dev, test"):
        load_split(objects)
    text = tmp_path / "text.npz"
    np.savez(text, train=np.array(["a", "b"]), dev=np.arange(2), test=np.arange(2))
    with pytest.raises(UserError, match="does not hold integer arrays"):
        load_split(text)


@pytest.mark.parametrize(
    "parts",
    [
        {"train": [0, 1, -1], "dev": [2], "test": [3]},  # numpy reads -1 from the end: the wrong row, silently
        {"train": [0, 1, 2], "dev": [2], "test": [3]},  # one example in two parts
        {"train": [[0, 1]], "dev": [2], "test": [3]},
    ],
)
def test_a_split_file_with_negative_or_repeated_indices_is_refused(tmp_path, parts):
    from recipes.splitting import load_split

    path = tmp_path / "split.npz"
    np.savez(path, **{name: np.asarray(values) for name, values in parts.items()})
    with pytest.raises(UserError, match="negative, repeated or nested example indices"):
        load_split(path)
