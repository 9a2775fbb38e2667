"""The shared digits run (trained, then exported with every variant): per-class results of Keras and of each
``.tflite`` variant recomputed from the files, the confusion figures, and ``report.html`` rendered in Chromium."""

import hashlib
import json
import re

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from edge.device.model import EdgeModel
from edge.variants import VARIANTS
from recipes.runs import Run
from tests.helpers import render_in_chromium, require_programs

LABELS = list(range(10))


def test_metrics_hold_kerass_per_class_results_of_each_split(shared):
    metrics = json.loads((shared.run_dir / Run.METRICS).read_text())
    predicted = shared.keras_outputs.argmax(axis=1)
    test = metrics["test"]["classes"]
    assert test["names"] == shared.class_names
    assert test["confusion_matrix"] == confusion_matrix(shared.y_test, predicted, labels=LABELS).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(shared.y_test, predicted, labels=LABELS)
    for index, name in enumerate(shared.class_names):
        figures = test["per_class"][name]
        assert figures["support"] == support[index]
        assert figures["precision"] == pytest.approx(precision[index])
        assert figures["recall"] == pytest.approx(recall[index])
        assert figures["f1"] == pytest.approx(f1[index])
    assert test["macro_avg"]["recall"] == pytest.approx(recall.mean())
    for part in ("train", "dev"):
        matrix = np.asarray(metrics[part]["classes"]["confusion_matrix"])
        assert matrix.sum() == metrics["split"][part]
        assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics[part]["accuracy"], abs=1e-6)
    with Image.open(shared.run_dir / Run.CONFUSION_MATRIX) as image:
        assert image.format == "PNG" and min(image.size) > 300


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_variants_confusion_matrix_is_recomputed_from_its_file(shared, name):
    report = json.loads((shared.edge_dir / "report.json").read_text())
    keras = confusion_matrix(shared.y_test, shared.keras_outputs.argmax(axis=1), labels=LABELS)
    assert report["keras_classes"]["confusion_matrix"] == keras.tolist()
    predicted = EdgeModel.load(shared.edge_dir / VARIANTS[name].filename).predict(shared.x_test).argmax(axis=1)
    variant = next(entry for entry in report["variants"] if entry["name"] == name)
    assert variant["classes"]["confusion_matrix"] == confusion_matrix(shared.y_test, predicted, labels=LABELS).tolist()
    recall = precision_recall_fscore_support(shared.y_test, predicted, labels=LABELS)[1]
    assert [variant["classes"]["per_class"][label]["recall"] for label in shared.class_names] == pytest.approx(recall)
    figure = shared.run_dir / Run.variant_confusion(name)
    with Image.open(figure) as image:
        assert image.format == "PNG" and image.width > image.height  # two matrices side by side
    manifest = json.loads((shared.edge_dir / "manifest.json").read_text())
    entry = manifest["files"][f"plots/confusion_matrix_{name}.png"]
    assert entry["sha256"] == hashlib.sha256(figure.read_bytes()).hexdigest()


def test_the_page_after_export_shows_every_variant_and_renders_in_chromium(shared, tmp_path):
    page = shared.run_dir / Run.REPORT
    text = page.read_text()
    report = json.loads((shared.edge_dir / "report.json").read_text())
    assert "<script" not in text.lower() and not re.search(r"""(src|href)=["']?(https?:|//|file:)""", text)
    for variant in report["variants"]:
        assert f"<td>{variant['name']}</td>" in text  # its row in the parity table
        assert f"{variant['name']} recall" in text  # its column in the per-class table
    assert f"{report['micro']['arena_bytes']:,}" in text
    require_programs("chromium")
    found = render_in_chromium(page, tmp_path)
    assert found["broken"] == [] and found["errors"] == []
    assert found["images"] == 3 + len(report["variants"])  # curves, learning rate, Keras matrix, one pair each
    with Image.open(found["screenshot"]) as screenshot:
        assert (np.asarray(screenshot.convert("L")) < 128).mean() > 0.01
