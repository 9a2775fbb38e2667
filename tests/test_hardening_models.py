"""Hardening, part two: one line that names the real problem for models holding code, damaged arrays, divergence
caused by the regularization, channels-first models and LiteRT's own errors; zip sizes checked before anything is
inflated; inputs with no content."""

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from edge.device import process
from edge.device.errors import UserError
from tests.helpers import ROOT, copy_run, error_line

runner = CliRunner()


# --- One line that names the real problem: models holding code, damaged arrays, divergence caused by the
# --- regularization, channels-first models, LiteRT's own errors; zip sizes checked before anything is inflated.


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A digits MLP trained for one epoch (about 10 s), for the tests that replace its ``model.keras``."""
    from recipes.config import resolve_config
    from recipes.training import train

    root = tmp_path_factory.mktemp("tiny-run")
    return train(resolve_config(None, {"epochs": 1, "out": str(root)}, []), report=None).run_dir


@pytest.fixture(scope="module")
def nchw_tflite(tmp_path_factory):
    """A float32 ``.tflite`` that takes channels-first (1, 3, 8, 8) images (a PyTorch-style layout): the channel
    means through four scale-and-ReLU steps, then a softmax over the 3 channels."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((1, 3, 8, 8), tf.float32)])
    def model(x):
        y = tf.reduce_mean(x, axis=[2, 3])
        for step in range(4):
            y = tf.nn.relu(y * float(step + 2) + 1.0)
        return tf.nn.softmax(y)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    path = tmp_path_factory.mktemp("nchw") / "nchw.tflite"
    path.write_bytes(converter.convert())
    return path


def _no_edge_folders(run):
    return sorted(path.name for path in run.iterdir() if "edge" in path.name) == []


def _declare_uncompressed_size(path, name: str, size: int) -> None:
    """Make the zip's central directory declare ``size`` uncompressed bytes for entry ``name`` (the data stays)."""
    content = bytearray(path.read_bytes())
    at = content.find(b"PK\x01\x02")
    while at >= 0:
        length = int.from_bytes(content[at + 28 : at + 30], "little")
        if content[at + 46 : at + 46 + length] == name.encode():
            content[at + 24 : at + 28] = size.to_bytes(4, "little")
        at = content.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(content))


def test_a_model_holding_a_lambda_layer_is_named_as_code_not_as_a_damaged_run(tiny_run, tmp_path):
    import keras

    run = copy_run(tiny_run, tmp_path / "run")
    keras.Sequential([keras.Input((64,)), keras.layers.Lambda(lambda t: t * 2)]).save(run / "model.keras")
    line = error_line(runner.invoke(cli.app, ["export", str(run)]))
    assert line == (
        f"error: {run / 'model.keras'} holds code (a Lambda layer), which is never run from a file (Keras safe "
        "mode); rebuild the model without a Lambda layer, or train again with 'python cli.py train'"
    )
    assert _no_edge_folders(run)


def test_a_model_of_an_unknown_layer_class_names_the_class_and_a_damaged_one_stays_damaged(tiny_run, tmp_path):
    import json
    import zipfile

    from recipes.runs import load_keras_file

    source = tiny_run / "model.keras"
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    layer = config["config"]["layers"][-1]
    layer.update(class_name="FancyLayer", module=None, registered_name="MyPackage>FancyLayer")
    unknown = tmp_path / "unknown.keras"
    with zipfile.ZipFile(unknown, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, json.dumps(config) if name == "config.json" else content)
    with pytest.raises(UserError) as raised:
        load_keras_file(unknown)
    assert str(raised.value) == (
        f"{unknown} uses the class 'FancyLayer', which neither Keras nor this toolkit defines; rebuild the model "
        "from built-in layers, or train again with 'python cli.py train'"
    )
    cut = tmp_path / "cut.keras"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(UserError, match=r"cut.keras cannot be loaded \(File is not a zip file\); the run is damaged"):
        load_keras_file(cut)


def test_a_keras_zip_that_declares_or_inflates_too_much_is_refused_before_inflating(tiny_run, tmp_path, monkeypatch):
    import zipfile

    from edge.device.limits import MAX_MODEL_BYTES
    from recipes.runs import load_keras_file

    run = copy_run(tiny_run, tmp_path / "run")
    with zipfile.ZipFile(tiny_run / "model.keras") as source, zipfile.ZipFile(run / "model.keras", "w") as bomb:
        bomb.writestr("config.json", source.read("config.json"))
        bomb.writestr("model.weights.h5", bytes(2 << 20), compress_type=zipfile.ZIP_DEFLATED)  # 2 MiB in ~2 KB
    line = error_line(runner.invoke(cli.app, ["export", str(run)]))
    assert "entry 'model.weights.h5' inflates" in line and "to 2,097,152 (over 100x" in line
    assert _no_edge_folders(run)
    declared = tmp_path / "declared.keras"
    with zipfile.ZipFile(declared, "w") as archive:
        archive.writestr("model.weights.h5", b"x" * 100)
    _declare_uncompressed_size(declared, "model.weights.h5", 2**31)
    with pytest.raises(UserError) as raised:
        load_keras_file(declared)
    assert str(raised.value).startswith(
        f"model file {declared} declares 2,147,483,648 bytes uncompressed (limit {MAX_MODEL_BYTES:,}); "
    )
    monkeypatch.setattr("recipes.runs.MAX_MODEL_BYTES", 1000)  # the run's own model, a few hundred KB, is then over
    with pytest.raises(UserError, match=r"bytes uncompressed \(limit 1,000\)"):
        load_keras_file(tiny_run / "model.keras")


def test_readme_limits_match_limits_py():
    from edge.device import limits

    section = (ROOT / "README.md").read_text().split("## Limits", 1)[1].split("\n## ", 1)[0]
    text = " ".join(section.split())
    assert limits.MAX_ARRAY_BYTES == 4 << 30
    assert "each array of an `.npz` (to train on or to predict), up to 4 GiB" in text
    assert limits.MAX_MODEL_BYTES == 1 << 30 and "`model.keras` up to 1 GiB" in text
    assert limits.MAX_ZIP_RATIO == 100 and limits._RATIO_FLOOR == 1 << 20
    assert "more than 100 times beyond 1 MiB" in text


def _npz_with_cut_x(path, x, y):
    """An ``.npz`` whose ``x.npy`` entry holds a whole header but only half of the array's bytes."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, array in (("x", x), ("y", y)):
            buffer = io.BytesIO()
            np.save(buffer, array)
            content = buffer.getvalue()
            archive.writestr(f"{name}.npy", content[: len(content) - x.nbytes // 2] if name == "x" else content)


def _npz_with_bad_crc(path, **arrays):
    np.savez(path, **arrays)
    content = bytearray(path.read_bytes())
    content[content.find(b"NUMPY") + 200] ^= 0xFF  # a byte of x's data: its CRC no longer matches
    path.write_bytes(bytes(content))


def test_a_damaged_npz_to_train_on_is_damaged_not_python_objects(tmp_path, monkeypatch):
    import zipfile

    x, y = np.random.default_rng(0).random((50, 8), np.float32), np.arange(50) % 2
    cut, crc, objects, big = (tmp_path / name for name in ("cut.npz", "crc.npz", "objects.npz", "big.npz"))
    _npz_with_cut_x(cut, x, y)
    _npz_with_bad_crc(crc, x=x, y=y)
    np.savez(objects, x=x, y=np.array([{"a": 1}] * 50, dtype=object))
    np.savez(big, x=x, y=y)
    header = tmp_path / "header.npz"  # a header cut inside its shape: numpy's parser raises a tokenizer error
    text = b"{'descr': '<f4', 'fortran_order': False, 'shape': (50,          \n"
    with zipfile.ZipFile(header, "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text)
    out = tmp_path / "runs"
    expected = {
        cut: f"error: NPZ file {cut} is damaged or cut short (EOF: reading array data, expected 1600 bytes got 800); "
        "save it again",
        crc: f"error: NPZ file {crc} is damaged or cut short (Bad CRC-32 for file 'x.npy'); save it again",
        objects: f"error: NPZ file {objects}: array 'y' holds Python objects, which are never unpickled; save plain "
        "numeric x and integer or string y arrays",
        header: f"error: NPZ file {header} is damaged or cut short (array 'x' has a damaged header); save it again",
    }
    for path, line in expected.items():
        assert error_line(runner.invoke(cli.app, ["train", "--data", str(path), "--out", str(out)])) == line
    monkeypatch.setattr("recipes.data.arrays.MAX_ARRAY_BYTES", 1000)  # x's entry: 1,600 bytes and its header
    line = error_line(runner.invoke(cli.app, ["train", "--data", str(big), "--out", str(out)]))
    assert line.startswith(f"error: NPZ file {big}: array 'x' declares 1,728 bytes uncompressed (limit 1,000); ")
    assert not out.exists() or not list((out / "train").glob("*"))


def test_a_damaged_or_oversized_npz_to_predict_is_one_line(nchw_tflite, tmp_path, monkeypatch):
    x = np.zeros((2, 3, 8, 8), np.float32)
    cut, crc = tmp_path / "cut.npz", tmp_path / "crc.npz"
    _npz_with_cut_x(cut, x, np.zeros(2))
    _npz_with_bad_crc(crc, x=x)
    for path in (cut, crc):
        line = error_line(runner.invoke(cli.app, ["predict", str(nchw_tflite), "--input", str(path)]))
        assert line.startswith(f"error: {path} is not a readable .npz file (") and "it is damaged or cut short" in line
    np.savez(tmp_path / "big.npz", x=x)
    monkeypatch.setattr("edge.device.inputs.MAX_ARRAY_BYTES", 1000)
    line = error_line(runner.invoke(cli.app, ["predict", str(nchw_tflite), "--input", str(tmp_path / "big.npz")]))
    assert "big.npz: array 'x' declares 1,664 bytes uncompressed (limit 1,000); predict smaller batches" in line


def test_yaml_with_a_python_object_tag_names_the_tag_not_the_syntax(tmp_path):
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("epochs: 3\nhidden_units: !!python/object:os.system {}\n")
    line = error_line(runner.invoke(cli.app, ["train", "--config", str(tagged), "--out", str(tmp_path)]))
    assert line == (
        f"error: config file {tagged} holds a tag plain YAML does not take (!!python/object:os.system at line 2); "
        "write plain values"
    )
    assert "fix the syntax" not in line


def test_training_that_diverges_under_a_huge_l2_names_l2_not_the_learning_rate(tmp_path):
    flags = ["--set", "optimizer=sgd", "--set", "learning_rate=0.01", "--set", "l2=1e6", "--set", "epochs=1"]
    result = runner.invoke(cli.app, ["train", *flags, "--out", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output  # stdout holds the progress lines
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: training diverged: the loss became ")
    assert "; l2 1e+06 is too strong: over " in line and line.endswith("lower l2, e.g. --set l2=1")
    assert "learning rate" not in line and "--learning-rate" not in line
    assert not list(tmp_path.glob("train/*"))


def test_the_divergence_fix_names_the_setting_at_fault():
    from recipes.config import TrainConfig
    from recipes.training import divergence_fix

    assert divergence_fix(TrainConfig(l2=1e6), 1000) == (
        "l2 1e+06 is too strong: over 1,000 training examples it adds 500 times each squared weight to the loss "
        "(l2/(2m)), which swamps the data loss (from l2 2e+03 on); lower l2, e.g. --set l2=1"
    )
    assert divergence_fix(TrainConfig(l1=1e30), 1000).startswith("l1 1e+30 is too strong: over 1,000 training")
    assert divergence_fix(TrainConfig(weight_decay=5.0), 1000) == (
        "weight_decay 5 is too strong: it adds 5 times each squared weight to the loss, which swamps the data loss "
        "(from weight_decay 1 on); lower weight_decay, e.g. --set weight_decay=0.0001"
    )
    expected = "lower the learning rate (now 0.5), e.g. --learning-rate 0.05"
    assert divergence_fix(TrainConfig(l2=1000.0, learning_rate=0.5), 1000) == expected  # l2/(2m) = 0.5: not it


def test_a_channels_first_model_says_so_for_an_image_and_reads_an_npy_in_its_layout(nchw_tflite, tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    line = error_line(runner.invoke(cli.app, ["predict", str(nchw_tflite), "--input", str(tmp_path / "photo.png")]))
    assert line == (
        "error: the model takes channels-first (NCHW) images of shape (3, 8, 8), which predict reads only as a .npy "
        "file already in that layout: give one of shape (n, 3, 8, 8) instead of photo.png"
    )
    np.save(tmp_path / "nchw.npy", np.random.default_rng(0).random((2, 3, 8, 8), np.float32))
    result = runner.invoke(cli.app, ["predict", str(nchw_tflite), "--input", str(tmp_path / "nchw.npy")])
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0].strip() for line in result.stdout.splitlines()] == ["0", "1"]


def _with_bad_tensor_index(content: bytes) -> bytes:
    """``content`` with every operator's first input pointing at a tensor that does not exist: LiteRT then reports
    the same line once per operator when it allocates."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    for operator in model.subgraphs[0].operators:
        operator.inputs = np.array([999, *list(operator.inputs)[1:]], np.int32)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_a_model_litert_refuses_is_quoted_once_and_re_export_is_advised_only_for_an_export(nchw_tflite, tmp_path):
    import hashlib
    import json

    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    content = _with_bad_tensor_index(nchw_tflite.read_bytes())
    (tmp_path / "elsewhere").mkdir()
    model = tmp_path / "elsewhere" / "model.tflite"
    model.write_bytes(content)
    line = error_line(runner.invoke(cli.app, ["predict", str(model), "--input", str(tmp_path / "x.npy")]))
    assert line == (
        f"error: {model} cannot be run by LiteRT (Invalid tensor index 999 in node inputs. The subgraph has "
        f"{line.split('The subgraph has ')[1].split(' ')[0]} tensors); the file is damaged or uses an operator or "
        "version this LiteRT cannot run: convert it again with a current TensorFlow"
    )
    (tmp_path / "export").mkdir()
    exported = tmp_path / "export" / "model.tflite"
    exported.write_bytes(content)
    files = {"model.tflite": {"sha256": hashlib.sha256(content).hexdigest()}}
    (tmp_path / "export" / "manifest.json").write_text(json.dumps({"format": 3, "files": files}))
    line = error_line(runner.invoke(cli.app, ["predict", str(exported), "--input", str(tmp_path / "x.npy")]))
    assert line.count("Invalid tensor index 999") == 1
    assert line.endswith("tensors); export it again with 'python cli.py export RUN_DIR'")


def test_litert_errors_are_quoted_once_each_sentence_and_capped():
    from edge.device.model import REASON_CHARS, _litert_reason

    repeated = RuntimeError("Bad axis.Node number 1 (MEAN) failed to prepare.Bad axis.\n" * 15)
    assert _litert_reason(repeated) == "Bad axis. Node number 1 (MEAN) failed to prepare."
    long = _litert_reason(RuntimeError("x" * 1500))
    assert len(long) == REASON_CHARS and long.endswith("…")


# ---------------------------------------------------------------------------------------- inputs with no content


def test_an_npz_whose_x_has_no_feature_columns_is_one_line(tmp_path):
    """It once aborted natively (exit 134) inside TensorFlow."""
    data = tmp_path / "empty.npz"
    np.savez(data, x=np.zeros((20, 0), np.float32), y=np.arange(20) % 2)
    line = error_line(runner.invoke(cli.app, ["train", "--data", str(data), "--out", str(tmp_path / "runs")]))
    assert "array 'x' has shape (20, 0), no values per example" in line
    assert not (tmp_path / "runs" / "train").exists() or not any((tmp_path / "runs" / "train").iterdir())


def test_predict_reads_a_first_row_with_numbers_as_data_not_as_a_header(shared, tmp_path):
    """A bad value in the first row is named with its line; it is not dropped as a header (which renumbered the
    rest). A header that names every column is still skipped."""
    model = shared.edge_dir / "model_int8.tflite"
    rows = [",".join(f"{value:g}" for value in example.reshape(-1)) for example in shared.x_test[:3]]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(["x" + rows[0][1:], *rows[1:]]) + "\n")
    line = error_line(runner.invoke(cli.app, ["predict", str(model), "--input", str(bad)]))
    assert f"{bad} line 1 holds 'x" in line and "a header row names every column" in line
    named = tmp_path / "named.csv"
    named.write_text(",".join(f"pixel_{i}" for i in range(64)) + "\n" + "\n".join(rows) + "\n")
    result = runner.invoke(cli.app, ["predict", str(model), "--input", str(named), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3


def test_a_run_that_cannot_be_written_is_one_line(shared, tmp_path, monkeypatch):
    """diagnose (and benchmark, export) write into the run: a read-only run or file system is one line naming the
    file, not a PermissionError traceback (simulated: the tests may run as root, who may write anywhere)."""
    import errno

    import recipes.runs

    run = copy_run(shared.run_dir, tmp_path / "run")

    def read_only(path, data):
        raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(recipes.runs, "write_atomic", read_only)
    line = error_line(runner.invoke(cli.app, ["diagnose", str(run)]))
    assert line.startswith(f"error: {run / 'diagnosis.md'}: Read-only file system; let this user read and write it")
    assert process.not_permitted(ValueError("x")) is None
    denied = process.not_permitted(PermissionError(errno.EACCES, "Permission denied", "/data/x.csv"))
    assert denied.startswith("/data/x.csv: Permission denied;")
