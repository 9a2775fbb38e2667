"""``report.html``: one self-contained page per run, to open from the run directory in any browser.

The page is built from the run's files alone (:class:`recipes.runs.Run` names them), so any command that adds to
a run rewrites it by calling :func:`write_report`: ``train`` writes it and ``export`` rewrites it. It shows the
results per split, the config, the data, the learning curves, the diagnosis, the per-class table (after export with
each variant's recall beside Keras's), the confusion matrices, and after export the variants' parity with Keras,
their sizes, the TFLite Micro arena and the estimated latency. Figures are embedded as ``data:`` URIs and the style
is inline: the page loads nothing from the network or the disk and runs no script. Every text that comes from the
data (class, feature and file names) is HTML-escaped. This module imports neither TensorFlow nor matplotlib, nor
anything of ``edge``: the export's figures are read from ``edge/report.json``.
"""

from __future__ import annotations

import base64
import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recipes.rundir import write_atomic
from recipes.runs import Run

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1180px;
  padding: 0 24px 48px; color: #1d1d1f; }
h1 { font-size: 24px; margin: 24px 0 4px; } h2 { font-size: 19px; margin: 32px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 16px; margin: 18px 0 6px; } .muted { color: #666; }
table { border-collapse: collapse; margin: 8px 0 14px; } th, td { padding: 3px 10px; border-bottom: 1px solid #e5e5e5; }
th { text-align: left; background: #f6f6f6; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.low td { background: #fff2e8; } tr.avg td { font-style: italic; } td.bad { color: #b00020; font-weight: 600; }
figure { margin: 10px 0 18px; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; } pre { background: #f6f6f6; padding: 10px; overflow-x: auto; }
nav a { margin-right: 12px; } .warn { color: #8a4b00; }
"""
LOW_RECALL_ROWS = 3  # the per-class table marks this many classes of lowest recall


def write_report(run_dir: str | Path, name: str | None = None) -> Path:
    """Write (atomically) ``report.html`` of the run at ``run_dir``, from the files it holds now.

    Args:
        run_dir: a run directory (or the staged folder training writes into).
        name: the run's name on the page; defaults to the folder's name.

    Returns:
        The page's path.
    """
    run = Run(run_dir)
    return write_atomic(run / Run.REPORT, render_report(run, name or run.path.name))


def render_report(run: Run, name: str) -> str:
    """The HTML of ``run``'s page (see the module's description)."""
    metrics = _json(run, Run.METRICS) or {}
    data = _json(run, Run.DATA) or {}
    export = _json(run, Run.EDGE_REPORT)
    task = metrics.get("task") or data.get("task") or "classification"
    sections = [
        ("results", "Results", _results(metrics, task)),
        ("config", "Config", _config(run)),
        ("data", "Data", _data(data, metrics)),
        ("curves", "Learning curves", _figures(run, (Run.LEARNING_CURVES, Run.LEARNING_RATE))),
        ("diagnosis", "Diagnosis", _markdown(_text(run, Run.DIAGNOSIS), skip_title=True)),
        (
            "classes",
            f"Per {'target' if task == 'regression' else 'class'} (test split)",
            _per_class(metrics, export, task),
        ),
        (
            "confusion",
            "Predicted against true (test split)" if task == "regression" else "Confusion matrices (test split)",
            _confusion(run, export),
        ),
    ]
    if export is not None:
        sections.append(("export", "Export: the .tflite variants", _export(run, export, task)))
    sections = [(anchor, title, body) for anchor, title, body in sections if body]
    navigation = " ".join(f'<a href="#{anchor}">{_e(title)}</a>' for anchor, title, _ in sections)
    body = "\n".join(f'<h2 id="{anchor}">{_e(title)}</h2>\n{content}' for anchor, title, content in sections)
    written = datetime.now(UTC).isoformat(timespec="seconds")
    what = "trained and exported" if export is not None else "trained"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(name)}: run report</title><style>{STYLE}</style></head><body>\n"
        f"<h1>{_e(name)}</h1>\n"
        f'<p class="muted">{_e(task)} run, {what}; page written {written} from the files of this run directory.</p>\n'
        f"<nav>{navigation}</nav>\n{body}\n</body></html>\n"
    )


# --- reading ---------------------------------------------------------------------------------------------------


def _json(run: Run, name: str) -> Any:
    """A JSON file of the run, or None when it is missing or unreadable (the page shows what it can)."""
    try:
        return json.loads((run / name).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _text(run: Run, name: str) -> str:
    try:
        return (run / name).read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def _image(run: Run, name: str, caption: str = "") -> str:
    """A figure of the run embedded as a ``data:`` URI; empty when the file is missing."""
    path = run / name
    if not path.is_file():
        return ""
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    text = caption or name
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{_e(name)}">'
        f"<figcaption>{_e(text)}</figcaption></figure>"
    )


# --- formatting --------------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any, form: str = ".4g") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int | float):
        return format(value, form)
    return _e(value)


def _table(header: list[str] | None, rows: list[list[str]], classes: list[str] | None = None) -> str:
    """An HTML table (no header row when ``header`` is None); cells are HTML already (escaped by the caller); in a
    table with a header, a cell starting with a digit, a sign or a dash is right-aligned."""
    head = (
        "" if header is None else "<thead><tr>" + "".join(f"<th>{_e(title)}</th>" for title in header) + "</tr></thead>"
    )
    lines = []
    for index, row in enumerate(rows):
        css = f' class="{classes[index]}"' if classes and classes[index] else ""
        cells = "".join(
            f'<td class="n">{cell}</td>' if header is not None and re.match(r"^[-+0-9−]", cell) else f"<td>{cell}</td>"
            for cell in row
        )
        lines.append(f"<tr{css}>{cells}</tr>")
    return f"<table>{head}<tbody>{''.join(lines)}</tbody></table>"


def _inline(text: str) -> str:
    """Markdown's inline ``**bold**`` and ```code``` in escaped text."""
    text = _e(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _markdown(text: str, skip_title: bool = False) -> str:
    """The little Markdown the run's ``diagnosis.md`` uses (headings, tables, bullets, paragraphs) as HTML."""
    blocks, lines = [], text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].rstrip()
        if not line:
            index += 1
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 3)
            if not (skip_title and level == 1):
                blocks.append(f"<h3>{_inline(line.lstrip('#').strip())}</h3>")
            index += 1
        elif line.startswith("|"):
            rows = []
            while index < len(lines) and lines[index].startswith("|"):
                cells = [cell.strip() for cell in lines[index].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells):
                    rows.append(cells)
                index += 1
            blocks.append(_table(rows[0], [[_inline(cell) for cell in row] for row in rows[1:]]))
        elif line.startswith("- "):
            items = []
            while index < len(lines) and lines[index].startswith("- "):
                items.append(f"<li>{_inline(lines[index][2:])}</li>")
                index += 1
            blocks.append(f"<ul>{''.join(items)}</ul>")
        else:
            paragraph = []
            while index < len(lines) and lines[index].strip() and not lines[index].startswith(("#", "|", "- ")):
                paragraph.append(lines[index].strip())
                index += 1
            blocks.append(f"<p>{_inline(' '.join(paragraph))}</p>")
    return "\n".join(blocks)


# --- sections ----------------------------------------------------------------------------------------------------


def _results(metrics: dict[str, Any], task: str) -> str:
    """Per split: examples, loss and the task's figures."""
    if not all(isinstance(metrics.get(part), dict) for part in ("train", "dev", "test")):
        return '<p class="muted">metrics.json is missing or damaged.</p>'
    from recipes.tasks import CLASSIFICATION, TASKS

    columns = TASKS.get(task, TASKS[CLASSIFICATION]).metric_columns(metrics)
    if task == "anomaly":
        columns = [*columns, ("AUC", "auc")]
    sizes = metrics.get("split") or {}
    rows = [
        [
            part,
            _number(sizes.get(part), "d"),
            _number(metrics[part].get("loss"), ".4f"),
            *(_number(metrics[part].get(key)) for _, key in columns),
        ]
        for part in ("train", "dev", "test")
    ]
    lines = [_table(["split", "examples", "loss", *(title for title, _ in columns)], rows)]
    if metrics.get("best_epoch"):
        lines.append(f"<p>Weights kept from epoch {_e(metrics['best_epoch'])} (early stopping).</p>")
    if task == "anomaly" and metrics.get("threshold") is not None:
        lines.append(
            f"<p>Threshold {_number(metrics['threshold'], '.6g')}: {_e(metrics.get('threshold_rule') or '')}.</p>"
        )
    for finding in metrics.get("findings") or []:
        if isinstance(finding, dict):
            lines.append(f'<p class="warn">{_e(finding.get("finding", ""))}: {_e(finding.get("remedy", ""))}</p>')
    return "\n".join(lines)


def _config(run: Run) -> str:
    text = _text(run, Run.CONFIG)
    if not text:
        return ""
    return f"<details><summary>config.yaml (resolved, click to open)</summary><pre>{_e(text)}</pre></details>"


def _data(data: dict[str, Any], metrics: dict[str, Any]) -> str:
    """What the run learned from: the data set, its kind, size, input, labels and split."""
    if not data:
        return ""
    rows = []
    for label, key in (
        ("name", "name"),
        ("source", "source"),
        ("kind", "kind"),
        ("examples", "examples"),
        ("input shape", "input_shape"),
        ("recordings", "recordings"),
        ("windows dropped", "windows_dropped"),
    ):
        if data.get(key) is not None:
            rows.append([_e(label), _e(data[key])])
    names = data.get("class_names") or data.get("target_names") or []
    if names:
        label = "classes" if data.get("class_names") else "targets"
        shown = ", ".join(str(name) for name in names[:60]) + (" …" if len(names) > 60 else "")
        rows.append([f"{label} ({len(names)})", _e(shown)])
    sizes = metrics.get("split")
    if isinstance(sizes, dict):
        rows.append(["split", _e(" / ".join(f"{part} {sizes.get(part)}" for part in ("train", "dev", "test")))])
    return _table(None, rows)


def _per_class(metrics: dict[str, Any], export: dict[str, Any] | None, task: str) -> str:
    """The test split's precision, recall, F1 and support per class (a regression: MAE, RMSE and R² per target),
    the lowest recalls marked; after export each variant's recall beside Keras's."""
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    if task == "regression":
        outputs = test.get("outputs") or {}
        rows = [
            [_e(target), _number(scores.get("mae")), _number(scores.get("rmse")), _number(scores.get("r2"), ".3f")]
            for target, scores in outputs.items()
        ]
        return _table(["target", "MAE", "RMSE", "R²"], rows) if rows else ""
    report = test.get("classes")
    if not isinstance(report, dict):
        return ""
    variants = [
        (variant["name"], variant["classes"])
        for variant in (export or {}).get("variants", [])
        if isinstance(variant.get("classes"), dict)
    ]
    recalls = sorted(
        (scores["recall"], name) for name, scores in report["per_class"].items() if scores.get("recall") is not None
    )
    low = {name for _, name in recalls[:LOW_RECALL_ROWS]}
    header = ["class", "support", "precision", "recall", "F1", *(f"{name} recall" for name, _ in variants)]
    rows, classes = [], []
    for name, scores in report["per_class"].items():
        row = [
            _e(name),
            _number(scores["support"], "d"),
            _percent(scores["precision"]),
            _percent(scores["recall"]),
            _percent(scores["f1"]),
        ]
        for _, other in variants:
            mine = other["per_class"].get(name, {}).get("recall")
            row.append(_recall_beside(mine, scores["recall"]))
        rows.append(row)
        classes.append("low" if name in low else "")
    for average in ("macro_avg", "weighted_avg"):
        figures = report[average]
        row = [
            average.replace("_avg", " average"),
            _number(figures["support"], "d"),
            _percent(figures["precision"]),
            _percent(figures["recall"]),
            _percent(figures["f1"]),
        ]
        row += [_percent(other[average]["recall"]) for _, other in variants]
        rows.append(row)
        classes.append("avg")
    note = (
        f'<p class="muted">Shaded: the {LOW_RECALL_ROWS} classes of lowest recall. Keras model on the test split'
        + ("; a variant's recall in red where it differs from Keras's." if variants else ".")
        + "</p>"
    )
    return note + _table(header, rows, classes)


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _recall_beside(value: Any, keras: Any) -> str:
    text = _percent(value)
    if value is None or keras is None or abs(value - keras) < 1e-12:
        return text
    return f'<span class="bad">{text}</span>'


def _confusion(run: Run, export: dict[str, Any] | None) -> str:
    """The Keras confusion matrix of the test split, then each exported variant's beside it."""
    parts = [
        _image(run, Run.CONFUSION_MATRIX, "Keras model; rows: true class, colour: share of the true class"),
        _image(run, Run.PREDICTED_VS_TRUE, "Keras model's values against the true ones; dashed: perfect predictions"),
    ]
    for variant in (export or {}).get("variants", []):
        name = str(variant.get("name", ""))
        parts.append(
            _image(run, Run.variant_confusion(name), f"Keras beside {name}; cells whose counts differ outlined in red")
        )
    return "\n".join(part for part in parts if part)


def _export(run: Run, export: dict[str, Any], task: str) -> str:
    """Each variant's parity with Keras on the test split, its size, arena and estimated latency, the warnings."""
    variants = [variant for variant in export.get("variants", []) if isinstance(variant, dict)]
    if task == "anomaly":
        parity = [
            ("AUC", "auc", ".4f"),
            ("decisions agree", "agreement", ".1%"),
            ("max score diff", "max_abs_diff", ".2g"),
        ]
        keras = f"Keras AUC {_number(export.get('keras_auc'), '.4f')}, threshold {_number(export.get('threshold'))}"
    elif task == "regression":
        parity = [("R²", "r2", ".4f"), ("MAE", "mae", ".4g"), ("mean diff/σ", "relative_error", ".1e")]
        keras = f"Keras R² {_number(export.get('keras_r2'), '.4f')}"
    else:
        parity = [
            ("accuracy", "accuracy", ".2%"),
            ("agrees with Keras", "agreement", ".1%"),
            ("max diff", "max_abs_diff", ".1e"),
            ("limit", "max_abs_diff_limit", "g"),
        ]
        keras = f"Keras accuracy {_number(export.get('keras_accuracy'), '.2%')}"
    arenas = _arenas(export)
    latency = _latencies(run, variants)
    measured = _measured_latencies(run)
    rows = []
    for variant in variants:
        name = str(variant.get("name"))
        rows.append(
            [
                _e(name),
                *(_number(variant.get(key), form) for _, key, form in parity),
                _number(variant.get("within_tolerance")),
                _number(variant.get("bytes"), ",d"),
                _number(variant.get("gzip_bytes"), ",d"),
                _number(arenas.get(name), ",d"),
                _number(latency.get(name), ".3g"),
                _number(measured.get(name), ",.1f"),
            ]
        )
    header = [
        "variant",
        *(title for title, _, _ in parity),
        "within tolerance",
        "bytes",
        "gzip bytes",
        "arena bytes",
        "est. ms",
        "µs here",
    ]
    targets = sorted({str(variant["latency_target"]) for variant in variants if variant.get("latency_target")})
    lines = [
        f"<p>Parity with Keras on {_e(export.get('test_examples'))} test examples ({keras}). Arena: what TFLite "
        "Micro needs (measured with its host interpreter; - when not measured). Estimated latency from the "
        f"model's multiply-accumulates{' on ' + _e(', '.join(targets)) if targets else ''} (an estimate, not a "
        "measurement; - when not estimated). µs here: the median single-example LiteRT invoke on the machine that "
        "ran <code>python cli.py benchmark</code> on this run (- before it ran).</p>",
        _table(header, rows),
    ]
    for name, shortfall in (export.get("failing") or {}).items():
        lines.append(f'<p class="warn">{_e(name)} is outside its tolerance: {_e(shortfall)}</p>')
    for warning in export.get("warnings") or []:
        lines.append(f'<p class="warn">warning: {_e(warning)}</p>')
    lines.append(_figures(run, _analysis_figures(run)))
    return "\n".join(line for line in lines if line)


def _arenas(export: dict[str, Any]) -> dict[str, int]:
    """The measured TFLite Micro arena of int8 and of a compressed variant, by variant."""
    arenas = {}
    micro = export.get("micro")
    if isinstance(micro, dict) and micro.get("arena_bytes"):
        arenas["int8"] = micro["arena_bytes"]
    compression = export.get("compression")
    if isinstance(compression, dict) and isinstance(compression.get("micro"), dict):
        if compression["micro"].get("arena_bytes"):
            arenas[str(compression.get("variant"))] = compression["micro"]["arena_bytes"]
    return arenas


def _measured_latencies(run: Run) -> dict[str, float]:
    """The median LiteRT invoke of each variant in microseconds, from ``edge/benchmark.json`` when it exists."""
    benchmark = _json(run, f"{Run.EDGE}/benchmark.json")
    models = benchmark.get("models") if isinstance(benchmark, dict) else None
    return {
        str(model["name"]): model["single"]["median_us"]
        for model in models or []
        if isinstance(model, dict) and isinstance(model.get("single"), dict) and "median_us" in model["single"]
    }


def _latencies(run: Run, variants: list[dict[str, Any]]) -> dict[str, float]:
    """The estimated latency of each variant: from the export, else from ``analyze``'s ``edge/analysis*.json``."""
    latency = {str(v["name"]): v["estimated_latency_ms"] for v in variants if v.get("estimated_latency_ms")}
    for path in sorted((run / Run.EDGE).glob("analysis*.json")):
        analysis = _json(run, f"{Run.EDGE}/{path.name}")
        name = path.stem.removeprefix("analysis").removeprefix("_") or "int8"
        if isinstance(analysis, dict) and isinstance(analysis.get("latency_ms"), int | float):
            latency.setdefault(name, analysis["latency_ms"])
    return latency


def _analysis_figures(run: Run) -> list[str]:
    folder = run / Run.EDGE_PLOTS
    return [f"{Run.EDGE_PLOTS}/{path.name}" for path in sorted(folder.glob("analysis*.png"))] if folder.is_dir() else []


def _figures(run: Run, names: Any) -> str:
    return "\n".join(image for image in (_image(run, name) for name in names) if image)
