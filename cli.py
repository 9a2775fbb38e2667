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

from recipes.errors import UserError

app = typer.Typer(
    help="From a data set to a Keras model running on an IoT device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_USER_ERROR = 2


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a UserError into one line on stderr and exit status 2 (no traceback)."""
    try:
        yield
    except UserError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_USER_ERROR) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing was written", err=True)
        raise typer.Exit(130) from None


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML file of config keys.")]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="key=value for any config key (repeatable).")
]
RecipeOption = Annotated[str | None, typer.Option(help="Recipe: mlp or cnn.")]
DataOption = Annotated[
    str | None, typer.Option(help="digits, iris, wine, breast_cancer, or a .csv/.npz file or image folder.")
]


def _print_config_help() -> None:
    from recipes.config import describe_fields

    for name, default, meaning in describe_fields():
        typer.echo(f"{name:<18} {default:<14} {meaning}")


@app.command()
def train(
    config: ConfigOption = None,
    recipe: RecipeOption = None,
    data: DataOption = None,
    label: Annotated[str | None, typer.Option(help="CSV label column.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
    batch_size: Annotated[str | None, typer.Option(help="Batch size, or 'full'.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Initial learning rate.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for a deterministic run.")] = None,
    out: Annotated[str | None, typer.Option(help="Root folder of runs.")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (default <data>-<recipe>).")] = None,
    bayes_error: Annotated[
        float | None, typer.Option(help="Optimal error estimate for the diagnosis.")
    ] = None,
    set_: SetOption = None,
    help_config: Annotated[
        bool, typer.Option("--help-config", help="List every config key and exit.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-epoch lines.")] = False,
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
                "epochs": epochs,
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "seed": seed,
                "out": out,
                "name": name,
                "bayes_error": bayes_error,
            },
            set_,
        )
        from recipes.training import train as run_training

        result = run_training(resolved, report=None if quiet else print)
    _print_result(result)


def _print_result(result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{result.epochs_run} epochs, {result.parameters:,} parameters, {result.seconds:.1f}s"
    )
    for column in ("split", "examples", "loss", "accuracy"):
        table.add_column(column, justify="right" if column != "split" else "left")
    for part in ("train", "dev", "test"):
        scores = result.metrics[part]
        table.add_row(
            part, str(result.metrics["split"][part]), f"{scores['loss']:.4f}", f"{scores['accuracy']:.4f}"
        )
    console = Console()
    console.print(table)
    console.print(f"diagnosis: {result.diagnosis.summary_line()}")
    console.print(f"run directory: {result.run_dir}")
    console.print(f"next: python cli.py export {result.run_dir}")


@app.command()
def diagnose(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by train.")],
    bayes_error: Annotated[float, typer.Option(help="Optimal (human-level) error estimate.")] = 0.0,
    tolerance: Annotated[float, typer.Option(help="Gap that counts as high.")] = 0.02,
) -> None:
    """Re-read a run's metrics and say whether it suffers from high bias, high variance or both."""
    with user_errors():
        from recipes.runs import diagnose_run

        diagnosis = diagnose_run(run_dir, bayes_error, tolerance)
    typer.echo(diagnosis.to_markdown(f"Diagnosis of {run_dir.name}"))


@app.command()
def recipes(
    data: DataOption = None,
    set_: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the recipes with their parameter count for the default config and input shape."""
    with user_errors():
        from recipes.catalog import describe_recipes

        rows = describe_recipes(data, set_)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(
            f"{row['name']:<6} {row['parameters']:>9,} parameters  input {tuple(row['input_shape'])}  "
            f"{row['description']}"
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
        if examples < 1 or epsilon <= 0 or threshold <= 0 or samples_per_tensor < 1:
            raise UserError("--examples and --samples-per-tensor must be >= 1, --epsilon and --threshold > 0")
        from recipes.gradcheck import gradcheck_config

        result = gradcheck_config(
            resolved,
            examples=examples,
            epsilon=epsilon,
            threshold=threshold,
            samples_per_tensor=samples_per_tensor,
        )
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"gradient check of {resolved.recipe} on {resolved.data} (epsilon {epsilon:g})")
    for column in ("weights", "checked", "relative error", "worst coordinate"):
        table.add_column(column)
    for row in result.to_table_rows():
        table.add_row(*row)
    console = Console()
    console.print(table)
    console.print(
        f"overall relative error {result.relative_error:.3e}: {result.verdict} "
        f"({'passed' if result.passed else 'FAILED'}, threshold {threshold:g})"
    )
    if not result.passed:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``edge-recipes`` script."""
    app()


if __name__ == "__main__":
    sys.exit(main())
