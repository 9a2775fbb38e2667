"""Per-class results (against scikit-learn), the confusion-matrix figures, and the run's report page built from a
run directory's files and rendered in headless Chromium. Nothing here trains: the run is written by hand."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import classification_report, confusion_matrix

from recipes import plots
from recipes.class_metrics import class_report, worst_recall_line, worst_recalled
from recipes.report_page import write_report
from recipes.runs import Run
from tests.helpers import render_in_chromium, require_programs

NAMES = [f"word{index}" for index in range(12)]


def _labels(seed: int = 0, classes: int = 12, count: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """True classes (the last class absent) and predictions right about 80% of the time."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes - 1, count)
    predicted = np.where(rng.random(count) < 0.8, y, rng.integers(0, classes, count))
    return y, predicted


def test_per_class_figures_equal_scikit_learns_classification_report():
    y, predicted = _labels()
    report = class_report(y, predicted, NAMES)
    expected = classification_report(
        y, predicted, labels=list(range(12)), target_names=NAMES, output_dict=True, zero_division=np.nan
    )
    for name in NAMES[:-1]:
        for ours, theirs in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert report["per_class"][name][ours] == pytest.approx(expected[name][theirs], abs=1e-12)
        assert report["per_class"][name]["support"] == expected[name]["support"]
    for average, key in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        for ours, theirs in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert report[average][ours] == pytest.approx(expected[key][theirs], abs=1e-12)
        assert report[average]["support"] == len(y)
    assert report["confusion_matrix"] == confusion_matrix(y, predicted, labels=list(range(12))).tolist()
    assert report["names"] == NAMES
    # The class the split does not hold but the model predicts: support 0, precision 0, recall undefined (None, not
    # a made-up 0; null in JSON), F1 as scikit-learn gives it.
    absent = report["per_class"][NAMES[-1]]
    assert absent["support"] == 0 and absent["precision"] == 0.0 and absent["recall"] is None
    assert absent["f1"] == pytest.approx(expected[NAMES[-1]]["f1-score"])
    assert json.loads(json.dumps(report))["per_class"][NAMES[-1]]["recall"] is None


def test_worst_recalled_classes_and_what_they_were_taken_for():
    # class a: 6 of 10 right, 3 taken for c, 1 for b; class b: 9 of 10; class c: 10 of 10; class d: none in the split
    y = np.array([0] * 10 + [1] * 10 + [2] * 10)
    predicted = np.array([0] * 6 + [2] * 3 + [1] + [1] * 9 + [0] + [2] * 10)
    report = class_report(y, predicted, ["a", "b", "c", "d"])
    worst = worst_recalled(report)
    assert [(row["name"], row["recall"], row["confused_with"], row["confused_count"]) for row in worst] == [
        ("a", 0.6, "c", 3),
        ("b", 0.9, "a", 1),
        ("c", 1.0, None, 0),
    ]
    line = worst_recall_line(report)
    assert line == "lowest test recall: a 60.0% of 10 (3 taken for c), b 90.0% of 10 (1 taken for a), c 100.0% of 10"


def test_an_anomaly_detectors_decisions_are_two_classes():
    from recipes.anomaly import CLASS_NAMES, decisions

    scores = np.array([0.1, 0.2, 0.5, 0.9, 0.4, 0.8])
    labels = np.array([0, 0, 0, 1, 1, 1])
    report = class_report(labels, decisions(scores, 0.5), CLASS_NAMES)
    # at 0.5: normal 0.1, 0.2 passed and 0.5 flagged; anomalies 0.9, 0.8 caught and 0.4 missed
    assert report["confusion_matrix"] == [[2, 1], [1, 2]]
    assert report["per_class"]["anomaly"]["recall"] == pytest.approx(2 / 3)


def _captured(monkeypatch):
    """Keep the figure save_figure gets, and write nothing."""
    kept = []
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: kept.append(figure))
    return kept


def test_the_pair_figure_outlines_exactly_the_cells_that_differ(tmp_path, monkeypatch):
    y, keras = _labels(1)
    _, int8 = _labels(2)
    first = confusion_matrix(y, keras, labels=list(range(12)))
    second = confusion_matrix(y, int8, labels=list(range(12)))
    kept = _captured(monkeypatch)
    cells = plots.plot_confusion_pair(first, second, NAMES, tmp_path / "pair.png", ("Keras", "int8"), "Test split")
    differ = {(int(row), int(column)) for row, column in zip(*np.nonzero(first != second), strict=True)}
    assert cells == len(differ) > 0
    (figure,) = kept
    for axis, counts in zip(figure.axes[:2], (first, second), strict=True):
        outlined = {
            (round(patch.get_y() + 0.5), round(patch.get_x() + 0.5))
            for patch in axis.patches
            if patch.get_edgecolor()[:3] == pytest.approx((0.839, 0.153, 0.157), abs=0.01)  # tab:red
        }
        assert outlined == differ
        written = {
            (round(text.get_position()[1]), round(text.get_position()[0])): text.get_text() for text in axis.texts
        }
        for (row, column), text in written.items():
            assert text == str(counts[row, column])
        # every non-zero cell carries its count
        assert {cell for cell, _ in written.items()} >= {tuple(cell) for cell in np.argwhere(counts > 0).tolist()}


def test_the_matrix_is_normalized_per_true_class_with_readable_names(tmp_path, monkeypatch):
    counts = np.array([[8, 2], [1, 99]])
    kept = _captured(monkeypatch)
    long_name = "a keyword whose name goes on and on"
    plots.plot_confusion_matrix(counts, ["short", long_name], tmp_path / "m.png", "Confusion matrix")
    (figure,) = kept
    axis = figure.axes[0]
    np.testing.assert_allclose(axis.images[0].get_array(), [[0.8, 0.2], [1 / 100, 99 / 100]])
    labels = [label.get_text() for label in axis.get_yticklabels()]
    assert labels[0] == "short" and len(labels[1]) == plots.NAME_CHARACTERS and labels[1].endswith("…")


def test_a_matrix_of_the_wrong_shape_is_refused(tmp_path):
    from edge.device.errors import UserError

    with pytest.raises(UserError, match="2x2"):
        plots.plot_confusion_matrix(np.ones((3, 3)), ["a", "b"], tmp_path / "m.png", "x")


# --- the report page --------------------------------------------------------------------------------------------


def _hand_made_run(folder):
    """A classifier's run directory written by hand (12 classes, one named with HTML), exported as float32 and
    int8: the files the page is built from."""
    names = [*NAMES[:-1], "<b>bold</b> & co"]
    y, keras = _labels(3)
    _, int8 = _labels(4)
    run = Run(folder)
    metrics = {"task": "classification", "split": {"train": 1800, "dev": 600, "test": 600}, "best_epoch": 7}
    for part in ("train", "dev", "test"):
        metrics[part] = {"loss": 0.5, "accuracy": float(np.mean(keras == y)), "classes": class_report(y, keras, names)}
    run.write_json(Run.METRICS, metrics)
    run.write_json(Run.DATA, {"name": "words", "kind": "audio", "examples": 3000, "class_names": names})
    run.write_text(Run.CONFIG, "recipe: ds_cnn\nepochs: 30\n")
    run.write_text(
        Run.DIAGNOSIS, "# Diagnosis\n\n| error | value |\n| --- | ---: |\n| train | 1% |\n\nVerdict: **low**\n"
    )
    history = {"loss": [1.0, 0.6, 0.5], "dev_loss": [1.1, 0.8, 0.7], "accuracy": [0.5, 0.7, 0.8]}
    plots.plot_learning_curves(history, run / Run.LEARNING_CURVES, best_epoch=3)
    plots.plot_learning_rate([0.001] * 3, run / Run.LEARNING_RATE)
    plots.plot_confusion_matrix(metrics["test"]["classes"]["confusion_matrix"], names, run / Run.CONFUSION_MATRIX, "t")
    variants = []
    for name, predicted in (("float32", keras), ("int8", int8)):
        classes = class_report(y, predicted, names)
        plots.plot_confusion_pair(
            metrics["test"]["classes"]["confusion_matrix"],
            classes["confusion_matrix"],
            names,
            run / Run.variant_confusion(name),
            ("Keras", name),
            "t",
        )
        variants.append(
            {
                "name": name,
                "accuracy": float(np.mean(predicted == y)),
                "agreement": 0.9,
                "bytes": 1000,
                "classes": classes,
            }
        )
    variants[1]["estimated_latency_ms"], variants[1]["latency_target"] = 12.5, "cortex-m4-120mhz"
    run.write_json(
        Run.EDGE_REPORT,
        {"task": "classification", "test_examples": 600, "variants": variants, "micro": {"arena_bytes": 4321}},
    )
    return run, names, y, int8


def test_the_page_holds_every_figure_and_table_and_nothing_from_outside(tmp_path):
    run, names, y, int8 = _hand_made_run(tmp_path / "run")
    page = write_report(run.path, "words-ds_cnn-1")
    text = page.read_text()
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", text) and "url(" not in text
    sources = re.findall(r'<img src="data:image/png;base64,([^"]+)"', text)
    expected = [
        Run.LEARNING_CURVES,
        Run.LEARNING_RATE,
        Run.CONFUSION_MATRIX,
        *map(Run.variant_confusion, ("float32", "int8")),
    ]
    assert [base64.b64decode(source) for source in sources] == [(run / name).read_bytes() for name in expected]
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in text and "<b>bold</b>" not in text  # names from the data escaped
    # the per-class table: Keras's recall and int8's beside it, as class_report computed them
    int8_recall = class_report(y, int8, names)["per_class"][names[0]]["recall"]
    assert f"{100 * int8_recall:.1f}%" in text
    assert "4,321" in text and "12.5" in text and "cortex-m4-120mhz" in text  # arena and estimated latency
    assert "<strong>low</strong>" in text  # the diagnosis's Markdown


def test_the_page_renders_in_chromium_with_every_image_loaded(tmp_path):
    require_programs("chromium")
    run, *_ = _hand_made_run(tmp_path / "run")
    page = write_report(run.path)
    found = render_in_chromium(page, tmp_path)
    assert found["images"] == 5 and found["broken"] == [] and found["errors"] == []
    with Image.open(found["screenshot"]) as screenshot:
        assert screenshot.width == 1280 and screenshot.height >= 2000
        pixels = np.asarray(screenshot.convert("L"))
    assert (pixels < 128).mean() > 0.01  # text and figures were painted, not a blank page


def test_the_chromium_probe_sees_a_broken_image_and_a_script_error(tmp_path):
    """The check itself: a page with an image that cannot decode and a script that throws is reported as such."""
    require_programs("chromium")
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        '<img alt="ok" src="data:image/png;base64,'
        + base64.b64encode(_tiny_png(tmp_path)).decode()
        + '"><img alt="broken" src="data:image/png;base64,AAAA"><script>undefinedFunction();</script></body></html>'
    )
    found = render_in_chromium(page, tmp_path)
    assert found["images"] == 2 and found["broken"] == ["broken"]
    assert len(found["errors"]) == 1 and "undefinedFunction" in found["errors"][0]


def _tiny_png(folder) -> bytes:
    path = folder / "tiny.png"
    Image.new("RGB", (4, 3), "red").save(path)
    return path.read_bytes()
