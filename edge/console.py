"""What ``export``, ``benchmark``, ``analyze`` and ``predict`` print beyond their reports: tables and lines on a rich
console (:func:`recipes.console.console`)."""

from __future__ import annotations

import sys
from pathlib import Path

from recipes.console import console

LAYER_ROWS = 5  # quantization-report rows printed per int8 variant


def print_export(report, layer_rows: bool = False) -> bool:
    """An export's parity and size tables, operators, TFLite Micro check, compression, firmware, the layers that
    lose most signal (``layer_rows``: for every int8 variant, else for failing ones), warnings and where it wrote;
    then one ``error:`` line on stderr per variant outside its tolerance. Returns whether every variant is within."""
    from rich.markup import escape

    screen = console()
    screen.print(parity_table(report))
    screen.print(size_table(report))
    for result in report.variants:
        screen.print(
            f"{result.name} operators: "
            + ", ".join(f"{name} x{count}" if count > 1 else name for name, count in result.operators.counts.items()),
            markup=False,
        )
        if result.quantization is not None and result.quantization.per_tensor:
            screen.print(f"{result.name} weights: {result.quantization.summary()}", markup=False)
    if report.micro is not None:
        agreement = f"; agrees with LiteRT on {report.micro.agreement:.1%}" if report.micro.measured else ""
        screen.print(f"micro: {report.micro.note}{agreement}", markup=False)
    if report.compression is not None:
        compression = report.compression
        micro = compression.micro
        agreement = f"; agrees with LiteRT on {micro.agreement:.1%}" if micro.measured else ""
        screen.print(
            f"micro ({compression.variant}): {micro.note}{agreement}; {' and '.join(compression.micro_files)}",
            markup=False,
        )
        screen.print(
            f"compression: {compression.variant} fine-tuned on a tf_keras twin (max diff "
            f"{compression.model.twin_difference:.1e} before fine-tuning); history in edge/{compression.history}",
            markup=False,
        )
    if report.firmware is not None:
        firmware = report.firmware
        screen.print(
            f"firmware: edge/{firmware.folder.name}/ ({', '.join(firmware.operators)}; arena "
            f"{firmware.arena_bytes:,} bytes; {firmware.examples} test examples); build with "
            f"make -C {firmware.folder} TFLM_ROOT=<tflite-micro tree> run",
            markup=False,
            soft_wrap=True,
        )
    for name, rows in report.layers.items():
        if layer_rows or name in report.failing:
            screen.print(
                f"{name}: int8 activations against the float model, most signal lost first (edge/quantization.json)",
                markup=False,
            )
            for row in rows[:LAYER_ROWS]:
                screen.print(f"  {row.to_line()}", markup=False, soft_wrap=True)
    for warning in report.warnings:
        screen.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if report.edge_dir is None:
        screen.print("nothing written: no variant is within its tolerance; edge/ is as it was", markup=False)
        return _failing_lines(report)
    screen.print(f"edge directory: {report.edge_dir}", markup=False)
    screen.print(
        "device bundle: copy edge/ to the device, pip install -r requirements.txt, then "
        "python predict.py model_int8.tflite --input FILE (no TensorFlow needed)",
        markup=False,
    )
    if not report.failing:
        screen.print(f"next: python cli.py benchmark {report.run_dir}", markup=False)
    return _failing_lines(report)


def _failing_lines(report) -> bool:
    """One ``error:`` line on stderr per variant outside its tolerance; whether there was none."""
    for line in report.failure_lines():
        print(f"error: {line}", file=sys.stderr)
    return not report.failing


def parity_table(report):
    """Each variant against Keras, in the columns of the task's parity (a classifier's accuracy and probability
    differences, an anomaly detector's AUC and decisions, a regression's R² and value differences)."""
    from rich import box
    from rich.table import Table

    first = report.variants[0].parity
    table = Table(title=first.title(), box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in ("variant", *first.columns, "ok"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for result in report.variants:
        table.add_row(result.name, *result.parity.row(), "yes" if result.parity.within_tolerance else "NO")
    return table


def size_table(report):
    """What each variant costs: bytes (and against float32), gzip -9 bytes (and against plain int8), zero weights."""
    from rich import box
    from rich.table import Table

    int8_gzip = next((result.gzip_bytes for result in report.variants if result.name == "int8"), None)
    table = Table(
        title="size (gzip -9: what storage or an over-the-air update pays)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("variant", "bytes", "/f32", "gzip", "/int8 gzip", "zero weights"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for result in report.variants:
        ratio = f"{result.ratio_to_float32:.1%}" if result.ratio_to_float32 is not None else "-"
        gzip_ratio = f"{result.gzip_bytes / int8_gzip:.1%}" if int8_gzip else "-"
        table.add_row(
            result.name, f"{result.bytes:,}", ratio, f"{result.gzip_bytes:,}", gzip_ratio, f"{result.sparsity:.1%}"
        )
    return table


def print_analysis(result, estimate: str) -> None:
    """The per-operator table, then flash, RAM, MACs and the estimated latency, and the files written."""
    from rich import box
    from rich.table import Table

    analysis = result.analysis
    macs = analysis.macs
    arena = analysis.arena_bytes is not None
    table = Table(
        title=f"{analysis.model}: {len(analysis.operators)} operators (bytes; ms estimated on {analysis.costs.target})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    ram = "arena %" if arena else "live"
    for column in ("#", "op", "MACs", "MAC %", "weights", "in", "out", ram, "ms", "output"):
        shape = column == "output"  # the one column that folds in a narrow terminal
        table.add_column(
            column, justify="left" if column in ("op", "output") else "right", no_wrap=not shape, overflow="fold"
        )
    for row in analysis.operators:
        table.add_row(
            str(row.index),
            row.op,
            f"{row.macs:,}",
            f"{row.macs / macs['total']:.1%}" if macs["total"] else "-",
            f"{row.weight_bytes:,}",
            f"{row.input_bytes:,}",
            f"{row.output_bytes:,}",
            f"{row.arena_share:.1%}" if arena else f"{row.live_bytes:,}",
            f"{row.ms:.3g}",
            "x".join(str(side) for side in row.output_shape),
        )
    screen = console()
    screen.print(table)
    flash, weights = analysis.flash_bytes, analysis.weight_bytes
    peak = analysis.operators[analysis.peak_operator] if analysis.peak_operator is not None else None
    at = f" at op {peak.index} {peak.op}" if peak else ""
    lines = [
        f"flash: {flash:,} bytes ({analysis.model}), of which weights {weights:,} ({weights / flash:.1%}) and "
        f"quantization parameters {analysis.quantization_bytes:,}",
        f"RAM: tensor arena {analysis.arena_bytes:,} bytes ({analysis.arena_source}); live activations peak at "
        f"{analysis.peak_activation_bytes:,} bytes{at}"
        if arena
        else f"RAM: {analysis.peak_activation_bytes:,} bytes of live activations{at}; arena {analysis.arena_source}",
        f"MACs: {macs['total']:,} (conv {macs['conv']:,}, depthwise {macs['depthwise']:,}, dense {macs['dense']:,}); "
        f"estimated {analysis.latency_ms:.3g} ms ({analysis.cycles:,.0f} cycles) on {analysis.costs.target}",
        f"the latency is an estimate, not a measurement, {estimate}",
    ]
    if analysis.subgraphs > 1:
        lines.append(f"only the first of {analysis.subgraphs} subgraphs (the one a device invokes) is analysed")
    if result.written:
        lines.append(f"written: {', '.join(str(path) for path in result.written)}")
    for line in lines:
        screen.print(line, markup=False, soft_wrap=True)


def draw_held_out_confusion(model, predictions: list, path: Path) -> None:
    """The confusion matrix of a classifier's labelled predictions as a PNG (rows of labels that name no class of
    the model are left out of the figure; predict says them on stderr)."""
    from edge.device.errors import UserError
    from edge.device.predictions import LabelledPrediction, confusion_counts
    from recipes.plots import plot_confusion_matrix

    labelled = bool(predictions) and all(isinstance(prediction, LabelledPrediction) for prediction in predictions)
    if model.task != "classification" or not labelled:
        raise UserError(
            "--confusion-png needs labelled inputs of a classifier: class subfolders, a labels.csv, a .ts file or an "
            ".npz with y"
        )
    names = list(model.class_names)
    _, counts = confusion_counts(predictions, names)
    plot_confusion_matrix(counts[: len(names)], names, path, f"Confusion matrix, {Path(model.source).name}")


def print_benchmark(report, runs: int, warmup: int, threads: int | None, batch_size: int) -> None:
    """``benchmark``'s table: bytes, single-example latency (median, p90) and batch throughput per model."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"LiteRT benchmark ({runs} invokes after {warmup} warm-up, threads {threads or 'default'})",
        box=box.SIMPLE_HEAD,
    )
    for column in ("model", "bytes", "median µs", "p90 µs", f"batch {batch_size} examples/s"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in report.models:
        table.add_row(
            row.name,
            f"{row.bytes:,}",
            f"{row.single.median_us:,.1f}",
            f"{row.single.p90_us:,.1f}",
            f"{row.throughput_per_s:,.0f}",
        )
    if report.keras_eager is not None:
        table.add_row(
            "keras (eager call)", "-", f"{report.keras_eager.median_us:,.1f}", f"{report.keras_eager.p90_us:,.1f}", "-"
        )
    screen = console()
    screen.print(table)
    if report.written is not None:
        screen.print(f"written: {report.written}", markup=False)


def print_target_measurement(measured, device) -> None:
    """``benchmark --target``'s table: flash, static RAM, arena and instructions measured on the emulated board, and
    the estimate of ``device`` (an :class:`edge.targets.Target`) beside them."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"{measured.name} on a Cortex-M4 (QEMU mps2-an386, TFLite Micro with CMSIS-NN; measured on the built "
        f"image, {measured.examples} examples)",
        box=box.SIMPLE_HEAD,
    )
    for column in ("figure", "measured", "estimate / note"):
        table.add_column(column, justify="left" if column != "measured" else "right")
    low, high = measured.instructions_range
    table.add_row("flash bytes", f"{measured.flash_bytes:,}", f"model array {measured.model_bytes:,}")
    table.add_row("static RAM bytes", f"{measured.ram_bytes:,}", f"arena reserved {measured.arena_reserved:,}")
    table.add_row("arena used bytes", f"{measured.arena_used:,}", "32-bit target, TFLite Micro's own count")
    table.add_row(
        "instructions / inference",
        f"{measured.instructions:,}",
        f"median (range {low:,}-{high:,}), front end and output mapping included",
    )
    table.add_row(
        "estimated cycles (model)",
        f"{measured.estimated_cycles:,.0f}",
        f"{device.name}: {measured.estimated_cycles / device.clock_hz * 1000:.2f} ms at {device.clock_hz / 1e6:g} MHz",
    )
    console().print(table)
