"""edge-recipes command line: a thin Typer app, one library call per command.

TensorFlow is imported only inside the commands that need it, so ``--help`` answers at once.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from edge.device.process import handle_sigterm, one_line_errors
from edge.targets import LATENCY_TARGET, targets_help
from recipes.config import TrainConfig
from recipes.console import resource_exhausted
from recipes.data import BUILTIN_DATASETS
from recipes.registry import REGISTRY

app = typer.Typer(
    help="From a data set to a Keras model running on an IoT device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULTS = TrainConfig()  # every default lives in recipes/config.py; the help shows the common ones
CONFIG_FLAGS = {field.name for field in dataclasses.fields(TrainConfig)}  # train's flags that set a config key


def user_errors(after_signal: str = "nothing was written"):
    """The commands' ending (:func:`edge.device.process.one_line_errors`), out of memory or disk included."""
    return one_line_errors(resource_exhausted, after_signal)


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
    str | None, typer.Option(help=f"{', '.join(BUILTIN_DATASETS)}, or a .csv/.npz/.ts file or image/.wav folder.")
]


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
    flags = {key: value for key, value in locals().items() if key in CONFIG_FLAGS}
    if help_config:
        from recipes.console import config_help_lines

        typer.echo("\n".join(config_help_lines()))
        return
    with user_errors():
        from recipes.config import resolve_config

        resolved = resolve_config(config, flags, set_)
        from recipes.training import train as run_training

        result = run_training(resolved, report=None if quiet else print, resume=resume)
    from recipes.console import print_train_result

    print_train_result(result)


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
    from recipes.console import recipe_lines

    typer.echo(json.dumps(rows, indent=2) if as_json else "\n".join(recipe_lines(rows)))


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
    from recipes.console import print_gradcheck

    print_gradcheck(result, resolved, epsilon, threshold)
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
        from edge.targets import cycle_costs

        report = export_run(
            run_dir,
            variants,
            calibration_samples=calibration_samples,
            float_io=float_io,
            compression=compression,
            progress=typer.echo,
            keep_failing=keep_failing,
            per_tensor=not per_channel,
            costs=cycle_costs(LATENCY_TARGET)[0],
            firmware=firmware,
        )
    from edge.console import print_export

    if not print_export(report, quantization_report):
        raise typer.Exit(1)


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
    from edge.console import print_benchmark

    print_benchmark(report, runs, warmup, threads, batch_size)


def _benchmark_target(path: Path, target: str, tflm_root: Path | None, as_json: bool) -> None:
    """``benchmark --target``: the firmware measured on the emulated board, printed beside the estimate."""
    with user_errors():
        from edge.firmware_build import measure_target

        measured, device = measure_target(path, target, tflm_root)
    if as_json:
        typer.echo(json.dumps(measured.to_dict(), indent=2))
        return
    from edge.console import print_target_measurement

    print_target_measurement(measured, device)


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
        from edge.targets import cycle_costs, describe_estimate

        costs, device = cycle_costs(target)
        result = analyze_path(path, costs, variant)
    if as_json:
        typer.echo(json.dumps(result.analysis.to_dict(), indent=2))
        return
    from edge.console import print_analysis

    print_analysis(result, describe_estimate(device))


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
            from edge.console import draw_held_out_confusion

            draw_held_out_confusion(loaded, predictions, confusion_png)
    text, warning = prediction_report(loaded, predictions, as_json)
    if warning:
        typer.echo(warning, err=True)
    typer.echo(text)


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
        typer.Option(help=f"Device and runtime for the latency estimate. {targets_help()}"),
    ] = None,
) -> None:
    """Search a recipe's hyperparameters with keras-tuner; the best configuration becomes a train run."""
    flags = {key: value for key, value in locals().items() if key not in ("space", "set_", "cache_dir")}
    with user_errors(after_signal="finished trials are kept; run the same command again to resume"):
        from tuning.settings import resolve_settings

        assignments = [*(set_ or []), *([f"cache_dir={cache_dir}"] if cache_dir else [])]
        settings = resolve_settings(**flags, space_file=space, assignments=assignments)
        from tuning.search import run_search

        result = run_search(settings, report=typer.echo)
    from tuning.console import print_tune

    print_tune(result)


def main() -> None:
    """Entry point of the ``edge-recipes`` script (and of ``python cli.py``): SIGTERM ends a command as Ctrl-C does."""
    handle_sigterm()
    app()


if __name__ == "__main__":
    sys.exit(main())
