"""edge-recipes command line: a thin Typer app, one library call per command.

TensorFlow is imported only inside the commands that need it, so ``--help`` answers at once.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from edge.device import process
from edge.device.errors import UserError, first_line
from edge.device.process import (
    EXIT_USER_ERROR,
    disk_full,
    handle_sigterm,
    interrupted_status,
    interruption,
    not_permitted,
)
from recipes.config import TrainConfig
from recipes.registry import REGISTRY

app = typer.Typer(
    help="From a data set to a Keras model running on an IoT device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULTS = TrainConfig()  # every default lives in recipes/config.py; the help shows the common ones
FIRM_IMPORTANCE_TRIALS = 30  # below this many scored trials the importance ranking gets a caveat
LAYER_ROWS = 5  # quantization-report rows printed per int8 variant


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a UserError into one line on stderr and exit status 2 (no traceback)."""
    try:
        yield
    except UserError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_USER_ERROR) from None
    except Exception as error:  # out of memory or disk, or no permission: one line; anything else keeps its traceback
        if process.SIGNALLED:  # library code (TensorFlow's tracing) turned the signal's KeyboardInterrupt into this
            typer.echo(f"{interruption(process.SIGNALLED[-1])}: nothing was written", err=True)
            raise typer.Exit(interrupted_status(process.SIGNALLED[-1])) from None
        line = resource_exhausted(error) or not_permitted(error)
        if line is None:
            raise
        typer.echo(f"error: {line}", err=True)
        raise typer.Exit(EXIT_USER_ERROR) from None
    except KeyboardInterrupt as interrupt:
        typer.echo(f"{interruption(interrupt)}: nothing was written", err=True)
        raise typer.Exit(interrupted_status(interrupt)) from None


PIPED_WIDTH = 160  # columns of rich's tables when output goes to a file or a pipe (rich would take 80)


def _console():
    """A rich console for the command's tables: the terminal's width, or :data:`PIPED_WIDTH` columns when the output
    is piped or redirected, where rich would wrap titles and cells at 80."""
    import shutil

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=max(PIPED_WIDTH, shutil.get_terminal_size().columns))


def resource_exhausted(error: BaseException) -> str | None:
    """One line for running out of memory or disk (what ran out and the remedy), or None for any other error.

    TensorFlow's ``ResourceExhaustedError`` is recognised by name, so this module need not import TensorFlow."""
    if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        return (
            f"out of memory ({first_line(error) or type(error).__name__}); lower --batch-size, or keep a large "
            "folder's features on disk with --set in_memory_mb=256; nothing was written"
        )
    return disk_full(error, "write elsewhere with --out or --cache-dir")


CacheOption = Annotated[
    str | None,
    typer.Option(
        help="Folder of the feature cache: decoded images and MFCCs of a folder, reused by later runs "
        "(default <out>/cache)."
    ),
]
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML file of config keys.")]
SetOption = Annotated[list[str] | None, typer.Option("--set", "-s", help="key=value for any config key (repeatable).")]
RecipeOption = Annotated[
    str | None, typer.Option(help=f"Recipe: {', '.join(REGISTRY)} (default {DEFAULTS.recipe}; see 'recipes').")
]
DataOption = Annotated[
    str | None,
    typer.Option(
        help="digits, iris, wine, breast_cancer, machine, diabetes, linnerud, motion, or a .csv/.npz/.ts file or "
        "image/.wav folder."
    ),
]


def _print_config_help() -> None:
    from recipes.config import describe_fields

    fields = describe_fields()
    width = max(len(name) for name, _, _ in fields)
    for name, default, meaning in fields:
        typer.echo(f"{name:<{width}}  {default:<14} {meaning}")


@app.command()
def train(
    config: ConfigOption = None,
    recipe: RecipeOption = None,
    data: DataOption = None,
    label: Annotated[
        str | None, typer.Option(help=f"CSV label column; a,b for several outputs (default {DEFAULTS.label}).")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="auto (default: regression for a numeric label with many values), classification, regression."
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(help="Time series: the column naming each recording (default 'recording' when present)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help=f"Maximum epochs (default {DEFAULTS.epochs}).")] = None,
    batch_size: Annotated[
        str | None, typer.Option(help=f"Batch size, or 'full' (default {DEFAULTS.batch_size}).")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help=f"Initial learning rate (default {DEFAULTS.learning_rate:g}).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help=f"Seed for a deterministic run (default {DEFAULTS.seed}).")] = None,
    out: Annotated[str | None, typer.Option(help=f"Root folder of runs (default {DEFAULTS.out}).")] = None,
    cache_dir: CacheOption = None,
    name: Annotated[str | None, typer.Option(help="Run name (default <data>-<recipe>).")] = None,
    bayes_error: Annotated[float | None, typer.Option(help="Optimal error estimate for the diagnosis.")] = None,
    set_: SetOption = None,
    help_config: Annotated[
        bool, typer.Option("--help-config", metavar="", help="List every config key and exit.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="No per-epoch lines.")] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            metavar="",
            help="Continue the interrupted run of this --name and --out from its last checkpoint.",
        ),
    ] = False,
) -> None:
    """Train a recipe on a data set and write a run directory (default: mlp on digits)."""
    if help_config:
        _print_config_help()
        return
    with user_errors():
        from recipes.config import resolve_config

        resolved = resolve_config(
            config,
            {
                "recipe": recipe,
                "data": data,
                "label": label,
                "task": task,
                "group": group,
                "epochs": epochs,
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "seed": seed,
                "out": out,
                "cache_dir": cache_dir,
                "name": name,
                "bayes_error": bayes_error,
            },
            set_,
        )
        from recipes.training import train as run_training

        result = run_training(resolved, report=None if quiet else print, resume=resume)
    _print_result(result)


def _print_result(result) -> None:
    from rich.table import Table

    table = Table(title=f"{result.epochs_run} epochs, {result.parameters:,} parameters, {result.seconds:.1f}s")
    columns = result.task.metric_columns(result.metrics)
    for column in ("split", "examples", "loss", *(title for title, _ in columns)):
        table.add_column(column, justify="right" if column != "split" else "left")
    for part in ("train", "dev", "test"):
        scores = result.metrics[part]
        values = [scores.get(key) for _, key in columns]
        table.add_row(
            part,
            str(result.metrics["split"][part]),
            f"{scores['loss']:.4f}",
            *("-" if value is None else f"{value:.4g}" for value in values),
        )
    console = _console()
    console.print(table)
    if line := result.task.class_line(result.metrics):
        console.print(line, markup=False, soft_wrap=True)
    console.print(result.task.summary_line(result.metrics, result.diagnosis), markup=False)
    console.print(f"run directory: {result.run_dir}")
    console.print(f"report: {result.run_dir / 'report.html'}")
    console.print(f"next: python cli.py export {result.run_dir}")


@app.command()
def diagnose(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by train.")],
    bayes_error: Annotated[
        float, typer.Option(help="Optimal (human-level) error estimate: a rate, or a regression's RMSE.")
    ] = 0.0,
    tolerance: Annotated[
        float | None,
        typer.Option(help="Gap that counts as high (default 0.02; a regression's 5% of the target's deviation)."),
    ] = None,
) -> None:
    """Re-read a run's metrics and say whether it suffers from high bias, high variance or both."""
    with user_errors():
        from recipes.runs import diagnose_run

        _, text = diagnose_run(run_dir, bayes_error, tolerance)
    typer.echo(text, nl=False)


@app.command()
def recipes(
    data: DataOption = None,
    set_: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Machine-readable output.")] = False,
) -> None:
    """List the recipes with their parameter count for the default config and input shape."""
    with user_errors():
        from recipes.catalog import describe_recipes

        rows = describe_recipes(data, set_)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        if row["refused"] is not None:
            typer.echo(f"{row['name']:<12} {'-':>9} cannot learn this data: {row['refused']}")
            continue
        typer.echo(
            f"{row['name']:<12} {row['parameters']:>9,} parameters {row['macs']:>12,} MACs  "
            f"input {tuple(row['input_shape'])}  {row['description']}"
        )


@app.command()
def gradcheck(
    config: ConfigOption = None,
    recipe: RecipeOption = None,
    data: DataOption = None,
    set_: SetOption = None,
    examples: Annotated[int, typer.Option(help="Examples in the batch.")] = 16,
    epsilon: Annotated[float, typer.Option(help="Two-sided difference step.")] = 1e-6,
    threshold: Annotated[float, typer.Option(help="Largest relative error that passes.")] = 1e-5,
    samples_per_tensor: Annotated[int, typer.Option(help="Coordinates checked per weight tensor.")] = 20,
) -> None:
    """Compare autodiff gradients with two-sided differences (float64, dropout off, regularization on)."""
    with user_errors():
        from recipes.config import resolve_config

        resolved = resolve_config(config, {"recipe": recipe, "data": data}, set_)
        from recipes.gradcheck import gradcheck_config

        result = gradcheck_config(
            resolved,
            examples=examples,
            epsilon=epsilon,
            threshold=threshold,
            samples_per_tensor=samples_per_tensor,
        )
    from rich.table import Table

    table = Table(title=f"gradient check of {resolved.recipe} on {resolved.data} (epsilon {epsilon:g})")
    for column in ("weights", "checked", "relative error", "worst coordinate"):
        table.add_column(column, overflow="fold")  # long weight paths wrap instead of ending alike in "…"
    for row in result.to_table_rows():
        table.add_row(*row)
    console = _console()
    console.print(table)
    console.print(
        f"overall relative error {result.relative_error:.3e}: {result.verdict} "
        f"({'passed' if result.passed else 'FAILED'}, threshold {threshold:g})"
    )
    if not result.passed:
        raise typer.Exit(1)


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by train.")],
    quantization: Annotated[
        str, typer.Option(help="Variants: a comma list of float32, float16, dynamic, int8, or 'all'.")
    ] = "float32,int8",
    calibration_samples: Annotated[
        int, typer.Option(help="Training examples in int8's representative data set.")
    ] = 300,
    float_io: Annotated[
        bool, typer.Option("--float-io", metavar="", help="int8 model with float32 input and output.")
    ] = False,
    prune: Annotated[
        float | None,
        typer.Option(
            help="Fine-tune with magnitude pruning to this sparsity in [0, 1), e.g. 0.5; exported as int8_pruned "
            "beside int8."
        ),
    ] = None,
    prune_epochs: Annotated[int | None, typer.Option(help="Pruning fine-tuning epochs (default 20).")] = None,
    prune_block: Annotated[
        int | None,
        typer.Option(
            help="Prune Dense kernels in blocks of this many consecutive inputs (default 16; 1: weight by weight).",
        ),
    ] = None,
    prune_learning_rate: Annotated[
        float | None,
        typer.Option(help="First learning rate of pruning, decaying along a half cosine (default 3x the run's)."),
    ] = None,
    qat: Annotated[
        bool,
        typer.Option(
            "--qat",
            metavar="",
            help="Fine-tune with quantization-aware training; exported as int8_qat (int8_pruned_qat with --prune).",
        ),
    ] = False,
    qat_epochs: Annotated[
        int | None,
        typer.Option(
            help="QAT fine-tuning epochs (default 3); the lowest dev loss's weights are kept, the start included."
        ),
    ] = None,
    qat_learning_rate: Annotated[float | None, typer.Option(help="QAT learning rate (default 1e-4).")] = None,
    keep_failing: Annotated[
        bool,
        typer.Option(
            "--keep-failing",
            metavar="",
            help="Write variants outside their tolerance too (marked failing), for inspection.",
        ),
    ] = False,
    per_channel: Annotated[
        bool,
        typer.Option(
            "--per-channel",
            metavar="",
            help="Keep every int8 layer's weights quantized per output channel (default: per tensor where that "
            "is as faithful, which makes the file smaller).",
        ),
    ] = False,
    quantization_report: Annotated[
        bool,
        typer.Option(
            "--quantization-report",
            metavar="",
            help="Print where each int8 variant loses signal, layer by layer (always "
            "written to edge/quantization.json).",
        ),
    ] = False,
    firmware: Annotated[
        bool,
        typer.Option(
            "--firmware",
            metavar="",
            help="Also write edge/firmware/: the int8 model as a C/C++ library for TFLite Micro with its front end "
            "in C, a Makefile and CMake project for a Cortex-M, and an example that runs test examples.",
        ),
    ] = False,
) -> None:
    """Convert a run's model to .tflite variants and write edge/ (parity report, C array, manifest).

    Exits with status 1 when a variant is outside its tolerance: that variant is not written (unless
    --keep-failing), and when no variant is within its tolerance an earlier edge/ stays as it was."""
    with user_errors():
        from edge.compress import CompressionSettings
        from edge.variants import parse_variants

        variants = parse_variants(quantization)
        compression = CompressionSettings.from_options(
            prune, prune_epochs, prune_block, prune_learning_rate, qat, qat_epochs, qat_learning_rate
        )
        from edge.export import export_run

        report = export_run(
            run_dir,
            variants,
            calibration_samples,
            float_io,
            compression,
            typer.echo,
            keep_failing,
            per_tensor=not per_channel,
            costs=_cycle_costs(LATENCY_TARGET)[0],
            firmware=firmware,
        )
    _print_export(report, quantization_report)
    if report.failing:
        for line in report.failure_lines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(1)


LATENCY_TARGET = "cortex-m4-120mhz"  # export's latency estimate and analyze's default target


def _cycle_costs(target: str):
    """The cycles per MAC of ``target`` as :class:`edge.analyze.CycleCosts`, and the target itself."""
    from edge.analyze import CycleCosts
    from tuning.hardware import target_named

    device = target_named(target)
    costs = CycleCosts(device.name, device.clock_hz, *(device.cycles_per_kind or (device.cycles_per_mac,) * 3))
    return costs, device


def _print_export(report, layer_rows: bool = False) -> None:
    from rich.markup import escape

    console = _console()
    console.print(_parity_table(report))
    console.print(_size_table(report))
    for result in report.variants:
        console.print(
            f"{result.name} operators: "
            + ", ".join(f"{name} x{count}" if count > 1 else name for name, count in result.operators.counts.items()),
            markup=False,
        )
        if result.quantization is not None and result.quantization.per_tensor:
            console.print(f"{result.name} weights: {result.quantization.summary()}", markup=False)
    if report.micro is not None:
        agreement = f"; agrees with LiteRT on {report.micro.agreement:.1%}" if report.micro.measured else ""
        console.print(f"micro: {report.micro.note}{agreement}", markup=False)
    if report.compression is not None:
        compression = report.compression
        micro = compression.micro
        agreement = f"; agrees with LiteRT on {micro.agreement:.1%}" if micro.measured else ""
        console.print(
            f"micro ({compression.variant}): {micro.note}{agreement}; {' and '.join(compression.micro_files)}",
            markup=False,
        )
        console.print(
            f"compression: {compression.variant} fine-tuned on a tf_keras twin (max diff "
            f"{compression.model.twin_difference:.1e} before fine-tuning); history in edge/{compression.history}",
            markup=False,
        )
    if report.firmware is not None:
        firmware = report.firmware
        console.print(
            f"firmware: edge/{firmware.folder.name}/ ({', '.join(firmware.operators)}; arena "
            f"{firmware.arena_bytes:,} bytes; {firmware.examples} test examples); build with "
            f"make -C {firmware.folder} TFLM_ROOT=<tflite-micro tree> run",
            markup=False,
            soft_wrap=True,
        )
    for name, rows in report.layers.items():
        if layer_rows or name in report.failing:
            console.print(
                f"{name}: int8 activations against the float model, most signal lost first (edge/quantization.json)",
                markup=False,
            )
            for row in rows[:LAYER_ROWS]:
                console.print(f"  {row.to_line()}", markup=False, soft_wrap=True)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if report.edge_dir is None:
        console.print("nothing written: no variant is within its tolerance; edge/ is as it was", markup=False)
        return
    console.print(f"edge directory: {report.edge_dir}", markup=False)
    console.print(
        "device bundle: copy edge/ to the device, pip install -r requirements.txt, then "
        "python predict.py model_int8.tflite --input FILE (no TensorFlow needed)",
        markup=False,
    )
    if not report.failing:
        console.print(f"next: python cli.py benchmark {report.run_dir}", markup=False)


def _parity_table(report):
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


def _size_table(report):
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


@app.command()
def benchmark(
    path: Annotated[Path, typer.Argument(help="A .tflite file, or a run directory (every exported variant).")],
    runs: Annotated[int, typer.Option(help="Timed single-sample invokes.")] = 200,
    warmup: Annotated[int, typer.Option(help="Untimed invokes first.")] = 20,
    threads: Annotated[int | None, typer.Option(help="LiteRT CPU threads (default: LiteRT's choice).")] = None,
    batch_size: Annotated[int, typer.Option(help="Examples per batch for the throughput figure.")] = 64,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Machine-readable output.")] = False,
    target: Annotated[
        str | None,
        typer.Option(
            help="cortex-m4: build the run's firmware package (export --firmware) with CMSIS-NN and measure flash, RAM "
            "and instructions per inference on QEMU's Cortex-M4 board, beside the estimate from MACs."
        ),
    ] = None,
    tflm_root: Annotated[
        Path | None, typer.Option(help="The TFLite Micro tree for --target (default: $TFLM_ROOT).")
    ] = None,
) -> None:
    """Measure size, single-sample latency and batch throughput of exported models."""
    if target is not None:
        _benchmark_target(path, target, tflm_root, as_json)
        return
    with user_errors():
        from edge.benchmark import benchmark_path

        report = benchmark_path(path, runs, warmup, threads, batch_size)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
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
    console = _console()
    console.print(table)
    if report.written is not None:
        console.print(f"written: {report.written}", markup=False)


MEASURED_TARGETS = ("cortex-m4",)


def _benchmark_target(path: Path, target: str, tflm_root: Path | None, as_json: bool) -> None:
    """``benchmark --target``: the firmware measured on the emulated board, printed beside the estimate."""
    import tempfile

    from rich import box
    from rich.table import Table

    with user_errors():
        from edge.device.errors import unknown_choice
        from edge.firmware_build import measure_target

        if target not in MEASURED_TARGETS:
            raise unknown_choice("target", target, MEASURED_TARGETS)
        costs, device = _cycle_costs(LATENCY_TARGET)
        with tempfile.TemporaryDirectory(prefix="edge-recipes-firmware-") as work:
            measured = measure_target(path, tflm_root, costs, Path(work))
    if as_json:
        typer.echo(json.dumps(measured.to_dict(), indent=2))
        return
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
    _console().print(table)


@app.command()
def analyze(
    path: Annotated[
        Path, typer.Argument(help="A run directory (its exported int8 model, or --variant) or a .tflite file.")
    ],
    variant: Annotated[
        str | None,
        typer.Option(
            help="A run's exported variant: int8 (default), float32, float16, dynamic, int8_pruned, int8_qat or "
            "int8_pruned_qat."
        ),
    ] = None,
    target: Annotated[
        str,
        typer.Option(
            help="Device and runtime of the cycle estimate, e.g. cortex-m4-120mhz (TFLite Micro) or "
            "cortex-m7-280mhz-x-cube-ai; 'tune --help' lists them all."
        ),
    ] = LATENCY_TARGET,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Machine-readable output.")] = False,
) -> None:
    """Per operator of an exported model: MACs, weight and activation bytes, share of the arena and estimated time
    on a device; totals for flash and RAM. For a run, also writes edge/analysis.json and edge/plots/analysis.png."""
    with user_errors():
        from edge.analyze import analyze_path
        from tuning.hardware import describe_estimate

        costs, device = _cycle_costs(target)
        result = analyze_path(path, costs, variant)
    if as_json:
        typer.echo(json.dumps(result.analysis.to_dict(), indent=2))
        return
    _print_analysis(result, describe_estimate(device))


def _print_analysis(result, estimate: str) -> None:
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
    console = _console()
    console.print(table)
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
        console.print(line, markup=False, soft_wrap=True)


@app.command()
def predict(
    model: Annotated[
        Path,
        typer.Argument(
            help="A .tflite file (labels, anomaly threshold or target names, and audio front end, from the "
            "manifest.json beside it)."
        ),
    ],
    input_file: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help="A .csv (a stream, for a model of windows), .npy, .npz, .ts (series; labelled: scored), image or .wav "
            "file of raw inputs.",
        ),
    ],
    top_k: Annotated[int, typer.Option(help="Classes shown per example (classifiers).")] = 3,
    threads: Annotated[int | None, typer.Option(help="LiteRT CPU threads.")] = None,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Machine-readable output.")] = False,
    confusion_png: Annotated[
        Path | None,
        typer.Option(help="Labelled inputs of a classifier: also draw their confusion matrix to this PNG file."),
    ] = None,
) -> None:
    """Run an exported model with the device runtime (LiteRT + numpy, no TensorFlow): the top classes, the
    anomaly score against the threshold, or a regression's values. A folder is read in one process; labelled
    inputs (class subfolders, a labels.csv, a .ts file, an .npz with y) are scored."""
    with user_errors():
        from edge.device.predictions import predict_file, prediction_report

        loaded, predictions = predict_file(model, input_file, top_k, threads)
        if confusion_png is not None:
            _draw_held_out_confusion(loaded, predictions, confusion_png)
    text, warning = prediction_report(loaded, predictions, as_json)
    if warning:
        typer.echo(warning, err=True)
    typer.echo(text)


def _draw_held_out_confusion(model, predictions: list, path: Path) -> None:
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


@app.command()
def tune(
    recipe: RecipeOption = None,
    data: DataOption = None,
    label: Annotated[str | None, typer.Option(help="CSV label column; a,b for several outputs.")] = None,
    task: Annotated[str | None, typer.Option(help="auto (default), classification or regression.")] = None,
    tuner: Annotated[str, typer.Option(help="random, hyperband, grid or bayesian.")] = "random",
    max_trials: Annotated[int, typer.Option(help="Trials per round (random, grid, bayesian).")] = 10,
    max_epochs: Annotated[int, typer.Option(help="Most epochs per trial; Hyperband's max_epochs.")] = 27,
    factor: Annotated[int, typer.Option(help="Hyperband's reduction factor.")] = 3,
    objective: Annotated[
        str | None,
        typer.Option(
            help="Dev metric to optimize: val_accuracy (classifier default), val_loss (anomaly and regression "
            "default) or val_mae (regression)."
        ),
    ] = None,
    rounds: Annotated[int, typer.Option(help="Coarse-to-fine rounds, each narrowed around the last's best.")] = 1,
    workers: Annotated[int | None, typer.Option(help="Worker processes beside a keras-tuner chief.")] = None,
    space: Annotated[Path | None, typer.Option(help="YAML search space replacing the recipe's default.")] = None,
    name: Annotated[
        str | None, typer.Option(help="Search name (default <data>-<recipe>-<tuner>); the same name resumes.")
    ] = None,
    out: Annotated[str | None, typer.Option(help="Root folder of runs.")] = None,
    cache_dir: CacheOption = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the split, the weights and the sampling.")] = None,
    set_: SetOption = None,
    max_int8_kb: Annotated[
        float | None,
        typer.Option(
            help="Largest int8 .tflite in KB (1,024 bytes); each trial is converted, a larger one is infeasible."
        ),
    ] = None,
    max_arena_kb: Annotated[
        float | None, typer.Option(help="Largest TFLite Micro tensor arena in KB (needs the micro extra).")
    ] = None,
    max_latency_ms: Annotated[
        float | None,
        typer.Option(help="Largest estimated latency in ms on --target (MACs by kind x cycles/MAC / clock)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="Device and runtime for the latency estimate. Calibrated on MLPerf Tiny results: "
            "cortex-m4-120mhz (TFLite Micro), cortex-m4-120mhz-microtvm-cmsis-nn, "
            "cortex-m33-128mhz-microtvm-cmsis-nn, cortex-m4-120mhz-x-cube-ai, cortex-m33-200mhz-tflm-cmsis-nn, "
            "cortex-m33-160mhz-x-cube-ai, cortex-m7-280mhz-x-cube-ai, cortex-m0plus-64mhz-hale, "
            "cortex-m4-120mhz-hale, cortex-m4-150mhz-hale, cortex-m33-160mhz-hale, cortex-m7-216mhz-hale, "
            "cortex-m7-280mhz-hale; uncalibrated: cortex-m0plus-48mhz, cortex-m33-64mhz, cortex-m7-480mhz, "
            "esp32-s3-240mhz."
        ),
    ] = None,
) -> None:
    """Search a recipe's hyperparameters with keras-tuner; the best configuration becomes a train run."""
    with user_errors():
        from tuning.settings import resolve_settings

        flags = {
            "recipe": recipe,
            "data": data,
            "label": label,
            "task": task,
            "tuner": tuner,
            "max_trials": max_trials,
            "max_epochs": max_epochs,
            "factor": factor,
            "objective": objective,
            "rounds": rounds,
            "workers": workers,
            "space_file": space,
            "name": name,
            "out": out,
            "seed": seed,
            "assignments": [*(set_ or []), *([f"cache_dir={cache_dir}"] if cache_dir else [])],
            "max_int8_kb": max_int8_kb,
            "max_arena_kb": max_arena_kb,
            "max_latency_ms": max_latency_ms,
            "target": target,
        }
        settings = resolve_settings(**flags)
        from tuning.search import run_search

        try:
            result = run_search(settings, report=typer.echo)
        except KeyboardInterrupt as interrupt:
            typer.echo(
                f"{interruption(interrupt)}: finished trials are kept; run the same command again to resume", err=True
            )
            raise typer.Exit(interrupted_status(interrupt)) from None
    _print_tune(result)


def _print_tune(result) -> None:
    from rich.table import Table

    from tuning.hardware import HARDWARE_METRICS, format_metric
    from tuning.report import MIN_TRIALS_FOR_IMPORTANCE, format_value

    best = result.ranked(5)
    table = Table(title=f"best {len(best)} of {len(result.records)} trials")
    table.add_column("trial", no_wrap=True)
    for record in best:
        table.add_column(record.label, justify="right")
    table.add_row(result.objective, *(f"{record.score:.4f}" for record in best))
    table.add_row("epochs", *(str(record.epochs) for record in best))
    table.add_row("seconds", *(f"{record.seconds:.1f}" for record in best), end_section=True)
    for metric in (metric for metric in HARDWARE_METRICS if metric in result.best.metrics):
        table.add_row(metric, *(format_metric(metric, record.metrics.get(metric)) for record in best))
    for key in dict.fromkeys(key for record in best for key in record.values):
        table.add_row(key, *(format_value(record.values.get(key, "")) for record in best))
    _console().print(table)
    if result.budget is not None:
        _print_pareto(result)
    for line in result.round_lines():
        typer.echo(line)
    if result.importance:
        scored = sum(record.scored for record in result.records)
        caveat = (
            f" (a random forest over {scored} trials: a rough ranking until a few dozen)"
            if scored < FIRM_IMPORTANCE_TRIALS
            else ""
        )
        typer.echo("importance: " + ", ".join(f"{key} {share:.2f}" for key, share in result.importance) + caveat)
    else:
        typer.echo(f"importance: needs at least {MIN_TRIALS_FOR_IMPORTANCE} completed trials with different results")
    pareto = ", pareto.csv, plots/pareto.png" if result.budget is not None else ""
    typer.echo(f"results: {result.tune_dir} (trials.csv, plots/trials.png{pareto}, best.yaml, summary.json)")
    scores = next(
        (
            f" (dev {name} {result.run_metrics['dev'][key]:.4f}, test {name} {result.run_metrics['test'][key]:.4f})"
            for key, name in (("accuracy", "accuracy"), ("r2", "R²"))
            if isinstance(result.run_metrics["dev"].get(key), float)
            and isinstance(result.run_metrics["test"].get(key), float)
        ),
        "",
    )
    typer.echo(f"best configuration retrained: {result.run_dir}{scores}")
    typer.echo(f"next: python cli.py export {result.run_dir}")


def _print_pareto(result) -> None:
    """The Pareto front of a hardware-aware search, and whether the arena was measured."""
    from rich.table import Table

    from tuning.hardware import ARENA_KB_METRIC, ARENA_NOT_MEASURED, HARDWARE_METRICS, format_metric

    infeasible = sum(record.feasible is False for record in result.records)
    table = Table(title=f"Pareto front ({len(result.records)} trials, {infeasible} over budget)")
    for column in ("trial", result.objective, *HARDWARE_METRICS, "feasible"):
        table.add_column(column, justify="left" if column == "trial" else "right")
    for record in result.pareto:
        table.add_row(
            record.label,
            f"{record.trained_score(result.objective):.4f}",
            *(format_metric(metric, record.metrics.get(metric)) for metric in HARDWARE_METRICS),
            "yes" if record.feasible else "no",
        )
    _console().print(table)
    if not any(ARENA_KB_METRIC in record.metrics for record in result.records):
        typer.echo(ARENA_NOT_MEASURED)


def main() -> None:
    """Entry point of the ``edge-recipes`` script (and of ``python cli.py``): SIGTERM ends a command as Ctrl-C does."""
    handle_sigterm()
    app()


if __name__ == "__main__":
    sys.exit(main())
