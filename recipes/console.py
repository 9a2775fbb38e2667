"""What the commands print: a rich console sized for a terminal or a pipe, and a trained run's result."""

from __future__ import annotations

import shutil
import sys

from edge.device.errors import first_line
from edge.device.process import disk_full

PIPED_WIDTH = 160  # columns of rich's tables when output goes to a file or a pipe (rich would take 80)


def console():
    """A rich console for the command's tables: the terminal's width, or :data:`PIPED_WIDTH` columns when the output
    is piped or redirected, where rich would wrap titles and cells at 80."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=max(PIPED_WIDTH, shutil.get_terminal_size().columns))


def print_train_result(result) -> None:
    """A trained run's table of losses and metrics per split, its class and summary lines, and where it is."""
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
    screen = console()
    screen.print(table)
    if line := result.task.class_line(result.metrics):
        screen.print(line, markup=False, soft_wrap=True)
    screen.print(result.task.summary_line(result.metrics, result.diagnosis), markup=False)
    screen.print(f"run directory: {result.run_dir}")
    screen.print(f"report: {result.run_dir / 'report.html'}")
    screen.print(f"next: python cli.py export {result.run_dir}")


def print_gradcheck(result, config, epsilon: float, threshold: float) -> None:
    """A gradient check's table (weights, coordinates checked, relative error, worst coordinate) and its verdict."""
    from rich.table import Table

    table = Table(title=f"gradient check of {config.recipe} on {config.data} (epsilon {epsilon:g})")
    for column in ("weights", "checked", "relative error", "worst coordinate"):
        table.add_column(column, overflow="fold")  # long weight paths wrap instead of ending alike in "…"
    for row in result.to_table_rows():
        table.add_row(*row)
    screen = console()
    screen.print(table)
    screen.print(
        f"overall relative error {result.relative_error:.3e}: {result.verdict} "
        f"({'passed' if result.passed else 'FAILED'}, threshold {threshold:g})"
    )


def recipe_lines(rows: list[dict]) -> list[str]:
    """``recipes``' lines: each recipe's parameters, MACs, input and description, or why it cannot learn the data."""
    lines = []
    for row in rows:
        if row["refused"] is not None:
            lines.append(f"{row['name']:<12} {'-':>9} cannot learn this data: {row['refused']}")
            continue
        lines.append(
            f"{row['name']:<12} {row['parameters']:>9,} parameters {row['macs']:>12,} MACs  "
            f"input {tuple(row['input_shape'])}  {row['description']}"
        )
    return lines


def config_help_lines() -> list[str]:
    """``train --help-config``: every config key with its default and meaning."""
    from recipes.config import describe_fields

    fields = describe_fields()
    width = max(len(name) for name, _, _ in fields)
    return [f"{name:<{width}}  {default:<14} {meaning}" for name, default, meaning in fields]


def resource_exhausted(error: BaseException) -> str | None:
    """One line for running out of memory or disk (what ran out and the remedy), or None for any other error.

    TensorFlow's ``ResourceExhaustedError`` is recognised by name, so this module need not import TensorFlow."""
    if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        return (
            f"out of memory ({first_line(error) or type(error).__name__}); lower --batch-size, or keep a large "
            "folder's features on disk with --set in_memory_mb=256; nothing was written"
        )
    return disk_full(error, "write elsewhere with --out or --cache-dir")
