"""Run directories never overwrite; failed runs leave nothing; files are replaced atomically."""

import pytest

from recipes.rundir import safe_name, staged_run, write_atomic


def test_runs_are_numbered_and_never_overwritten(tmp_path):
    paths = []
    for index in range(3):
        with staged_run(tmp_path, "train", "digits-mlp") as run:
            (run.path / "marker.txt").write_text(str(index))
        paths.append(run.final_path)
    assert [p.name for p in paths] == ["digits-mlp-1", "digits-mlp-2", "digits-mlp-3"]
    assert [(p / "marker.txt").read_text() for p in paths] == ["0", "1", "2"]
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [
        "digits-mlp-1",
        "digits-mlp-2",
        "digits-mlp-3",
    ]


def test_numbering_continues_after_gaps(tmp_path):
    (tmp_path / "train" / "x-7").mkdir(parents=True)
    with staged_run(tmp_path, "train", "x") as run:
        pass
    assert run.final_path.name == "x-8"


def test_failed_run_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), staged_run(tmp_path, "train", "digits-mlp") as run:
        (run.path / "model.keras").write_text("half")
        raise RuntimeError("boom")
    assert list((tmp_path / "train").iterdir()) == []


def test_write_atomic_replaces_whole_file(tmp_path):
    target = tmp_path / "a" / "diagnosis.md"
    write_atomic(target, "old")
    write_atomic(target, b"new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["diagnosis.md"]


def test_safe_name():
    assert safe_name("my data/set 1") == "my-data-set-1"
    assert safe_name("..") == "run"
