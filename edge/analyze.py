"""Where a ``.tflite`` model's flash, RAM and time go, operator by operator: the device report.

The report is read from the exported flatbuffer (what the device runs, after BatchNorm folding, activation
fusion and the z-score split), with the schema LiteRT ships (:mod:`edge.flatbuffer`); nothing is allocated or
invoked except the optional TFLite Micro arena measurement. Per operator of the main subgraph, in execution
order:

- MACs, from the tensor shapes stored in the flatbuffer (the batch as exported, usually 1):
  ``CONV_2D`` output elements × kernel height × kernel width × filter input channels (the input's channels
  per group); ``DEPTHWISE_CONV_2D`` output elements × kernel height × kernel width; ``FULLY_CONNECTED`` output
  elements × input features; ``TRANSPOSE_CONV`` input elements × kernel height × kernel width × output
  channels. Every other operator counts 0, as :mod:`recipes.macs` counts pooling, additions and activations,
  so the total equals :func:`recipes.macs.count_macs` of the Keras model.
- weight bytes: the stored bytes of the constant tensors it reads (weights, biases, and small constants such
  as a MEAN's axes or a RESHAPE's shape), each buffer charged to the first operator that reads it (the
  converter shares one buffer between equal constants, and leaves out a bias of zeros); their quantization
  parameters (float32 scales and int64 zero points in the flatbuffer) are counted apart.
- input and output activation bytes: its non-constant tensors (elements × dtype size).
- live bytes: every activation alive while it runs (produced earlier, or a model input, and read by it or a
  later operator, or a model output), and its share of the measured arena when there is one.
- estimated cycles: MACs × the target's cycles per MAC of the operator's kind (convolution, depthwise, dense),
  as :func:`edge.targets.estimate_latency_ms` estimates a whole model; operators without MACs are not
  charged, so the total is that model-level estimate. An estimate, not a measurement.

Totals: flash is the ``.tflite`` file (of it, the constant buffers); RAM is the TFLite Micro tensor arena when
it was measured, else the peak of live activations (a lower bound: TFLite Micro adds tensor metadata,
per-channel quantization data and kernel scratch buffers, and its planner may leave gaps).

This module imports neither TensorFlow nor :mod:`tuning`: the target's figures come in as plain numbers.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from edge.device.errors import UserError, first_line, unknown_choice
from edge.flatbuffer import read_model
from edge.operators import operator_name
from edge.variants import COMPRESSED_VARIANTS, VARIANTS
from recipes.rundir import write_json

REPORT_NAME = "report.json"
DEFAULT_VARIANT = "int8"
ARENA_MEASURED = "measured on the TFLite Micro host interpreter, 64-bit host"
ARENA_AT_EXPORT = "measured at export on the TFLite Micro host interpreter, 64-bit host: edge/report.json"
PEAK_ONLY = "not measured: the peak of live activations instead (a lower bound; install the micro extra to measure)"
# The operators that do multiply-accumulates, and the kind of kernel whose cycles per MAC they are charged.
MAC_KINDS = {
    "CONV_2D": "conv",
    "TRANSPOSE_CONV": "conv",
    "DEPTHWISE_CONV_2D": "depthwise",
    "FULLY_CONNECTED": "dense",
}
KINDS = ("conv", "depthwise", "dense")
# Bytes per element of each tensor type (INT4 packs two elements in a byte).
_TYPE_BYTES = {
    "FLOAT32": 4,
    "FLOAT16": 2,
    "BFLOAT16": 2,
    "FLOAT64": 8,
    "INT4": 0.5,
    "INT8": 1,
    "UINT8": 1,
    "BOOL": 1,
    "INT16": 2,
    "UINT16": 2,
    "INT32": 4,
    "UINT32": 4,
    "INT64": 8,
    "UINT64": 8,
    "COMPLEX64": 8,
    "COMPLEX128": 16,
}
_BYTES_OF_TYPE = {code: _TYPE_BYTES.get(name, 1) for name, code in vars(schema.TensorType).items() if name.isupper()}
_SCALE_BYTES, _ZERO_POINT_BYTES = 4, 8  # float32 scales, int64 zero points in the flatbuffer
_NUMPY_TYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT16: np.int16,
    schema.TensorType.INT32: np.int32,
}


@dataclass(frozen=True)
class CycleCosts:
    """What one MAC of each kernel kind costs on a target, as plain numbers (from :mod:`tuning.hardware`).

    Args:
        target: the target's name, e.g. ``cortex-m4-120mhz``.
        clock_hz: its core clock.
        conv: cycles per convolution MAC.
        depthwise: cycles per depthwise-convolution MAC.
        dense: cycles per fully connected MAC.
    """

    target: str
    clock_hz: float
    conv: float
    depthwise: float
    dense: float

    def cycles(self, kind: str | None, macs: int) -> float:
        """Estimated cycles of ``macs`` multiply-accumulates of ``kind`` (0 for an operator without MACs)."""
        return 0.0 if kind is None else getattr(self, kind) * macs

    def milliseconds(self, cycles: float) -> float:
        """``cycles`` at the target's clock, in milliseconds."""
        return cycles / self.clock_hz * 1000.0


@dataclass
class OperatorCost:
    """What one operator costs.

    Args:
        index: its position in execution order.
        op: the builtin operator, e.g. ``CONV_2D`` (``CUSTOM:<name>`` for a custom one).
        kind: ``conv``, ``depthwise`` or ``dense`` for an operator with MACs, else None.
        output_shape: the shape of its first output.
        macs: multiply-accumulates per invoke.
        weight_bytes: stored bytes of the constant tensors attributed to it.
        quantization_bytes: bytes of those tensors' quantization scales and zero points.
        input_bytes: bytes of its non-constant inputs.
        output_bytes: bytes of its outputs.
        live_bytes: bytes of every activation alive while it runs.
        arena_share: ``live_bytes`` as a share of the measured arena; None when the arena was not measured.
        cycles: estimated cycles on the target.
        ms: estimated milliseconds on the target.
    """

    index: int
    op: str
    kind: str | None
    output_shape: list[int]
    macs: int
    weight_bytes: int
    quantization_bytes: int
    input_bytes: int
    output_bytes: int
    live_bytes: int
    arena_share: float | None
    cycles: float
    ms: float


@dataclass
class ModelAnalysis:
    """The device report of one ``.tflite`` model.

    Args:
        model: the file analysed.
        operators: one row per operator, in execution order.
        flash_bytes: the flatbuffer's size (what the device stores).
        weight_bytes: the constant buffers in it.
        quantization_bytes: the quantization scales and zero points of the constant tensors.
        arena_bytes: the TFLite Micro tensor arena; None when not measured.
        arena_source: how the arena was measured, or why it was not.
        peak_activation_bytes: the largest sum of live activations at one operator.
        peak_operator: the index of that operator (None for a model without operators).
        costs: the target's cycles per MAC.
        subgraphs: subgraphs in the file (only the first, the one a device invokes, is analysed).
    """

    model: str
    operators: list[OperatorCost]
    flash_bytes: int
    weight_bytes: int
    quantization_bytes: int
    arena_bytes: int | None
    arena_source: str
    peak_activation_bytes: int
    peak_operator: int | None
    costs: CycleCosts
    subgraphs: int = 1

    @property
    def ram_bytes(self) -> int:
        """The RAM the model needs: the measured arena, else the peak of live activations."""
        return self.peak_activation_bytes if self.arena_bytes is None else self.arena_bytes

    @property
    def macs(self) -> dict[str, int]:
        """MACs by kernel kind (``conv``, ``depthwise``, ``dense``) and their ``total``."""
        counts = {kind: sum(row.macs for row in self.operators if row.kind == kind) for kind in KINDS}
        return {**counts, "total": sum(counts.values())}

    @property
    def cycles(self) -> float:
        """Estimated cycles of one invoke."""
        return sum(row.cycles for row in self.operators)

    @property
    def latency_ms(self) -> float:
        """Estimated milliseconds of one invoke."""
        return self.costs.milliseconds(self.cycles)

    def with_arena(self, arena_bytes: int, source: str) -> ModelAnalysis:
        """This report with a measured arena: RAM becomes the arena and each operator gets its share of it."""
        for row in self.operators:
            row.arena_share = row.live_bytes / arena_bytes
        self.arena_bytes, self.arena_source = arena_bytes, source
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``analysis.json`` and ``--json``."""
        return {
            "model": self.model,
            "target": asdict(self.costs),
            "totals": {
                "flash_bytes": self.flash_bytes,
                "weight_bytes": self.weight_bytes,
                "quantization_bytes": self.quantization_bytes,
                "ram_bytes": self.ram_bytes,
                "ram_source": "arena" if self.arena_bytes is not None else "peak_activations",
                "arena_bytes": self.arena_bytes,
                "arena_source": self.arena_source,
                "peak_activation_bytes": self.peak_activation_bytes,
                "peak_operator": self.peak_operator,
                "macs": self.macs,
                "cycles": self.cycles,
                "latency_ms": self.latency_ms,
            },
            "subgraphs": self.subgraphs,
            "operators": [asdict(row) for row in self.operators],
        }


def _shape(tensor: Any) -> list[int]:
    return [int(tensor.Shape(axis)) for axis in range(tensor.ShapeLength())]


def _tensor_bytes(tensor: Any) -> int:
    return math.ceil(math.prod(_shape(tensor)) * _BYTES_OF_TYPE.get(tensor.Type(), 1))


def _quantization_bytes(tensor: Any) -> int:
    quantization = tensor.Quantization()
    if quantization is None:
        return 0
    return quantization.ScaleLength() * _SCALE_BYTES + quantization.ZeroPointLength() * _ZERO_POINT_BYTES


def _macs(op: str, inputs: list[list[int]], output: list[int]) -> int:
    """MACs of one operator from its input shapes and first output's shape (see the module docstring)."""
    if op == "CONV_2D":  # filter [out_c, k_h, k_w, in_c / groups]
        return math.prod(output) * math.prod(inputs[1][1:])
    if op == "DEPTHWISE_CONV_2D":  # filter [1, k_h, k_w, out_c]
        return math.prod(output) * math.prod(inputs[1][1:3])
    if op == "FULLY_CONNECTED":  # weights [out_features, in_features]
        return math.prod(output) * inputs[1][-1]
    if op == "TRANSPOSE_CONV":  # inputs: output shape, filter [out_c, k_h, k_w, in_c], input
        return math.prod(inputs[2]) * math.prod(inputs[1][:3])
    return 0


def analyze_model(content: bytes, costs: CycleCosts, name: str = "model.tflite") -> ModelAnalysis:
    """The per-operator report of a ``.tflite`` flatbuffer (arena not measured: see :meth:`ModelAnalysis.with_arena`).

    Args:
        content: the ``.tflite`` bytes.
        costs: the target's cycles per MAC by kind and its clock.
        name: what to call the model in the report.

    Raises:
        UserError: the bytes are not a ``.tflite`` flatbuffer, or a damaged one.
    """
    model = read_model(content)
    try:
        return _analyze(model, content, costs, name)
    except (IndexError, struct.error, TypeError, AttributeError, OverflowError) as error:
        raise UserError(f"{name} is a damaged .tflite file ({first_line(error)}); export it again") from None


def _analyze(model: Any, content: bytes, costs: CycleCosts, name: str) -> ModelAnalysis:
    if model.SubgraphsLength() == 0:
        raise UserError(f"{name} has no subgraph to run; export it again")
    graph = model.Subgraphs(0)
    operators = [graph.Operators(index) for index in range(graph.OperatorsLength())]
    constant, stored = {}, {}  # tensor index -> buffer index; buffer index -> bytes (a buffer may be shared)
    for index in range(graph.TensorsLength()):
        buffer = graph.Tensors(index).Buffer()
        length = model.Buffers(buffer).DataLength() if 0 < buffer < model.BuffersLength() else 0
        if length:
            constant[index], stored[buffer] = buffer, length
    graph_inputs = {int(index) for index in graph.InputsAsNumpy()} if graph.InputsLength() else set()
    graph_outputs = {int(index) for index in graph.OutputsAsNumpy()} if graph.OutputsLength() else set()
    first_use, last_use = {index: -1 for index in graph_inputs}, {}
    end = len(operators)
    for position, operator in enumerate(operators):
        for index in _indices(operator.InputsAsNumpy(), operator.InputsLength()):
            last_use[index] = position
        for index in _indices(operator.OutputsAsNumpy(), operator.OutputsLength()):
            first_use.setdefault(index, position)
            last_use.setdefault(index, position)
    for index in graph_outputs:
        last_use[index] = end
    lifetimes = {
        index: (first_use[index], last_use.get(index, first_use[index])) for index in first_use if index not in constant
    }
    sizes = {index: _tensor_bytes(graph.Tensors(index)) for index in lifetimes}
    charged_tensors: set[int] = set()  # constants already charged to an earlier operator
    charged_buffers: set[int] = set()
    rows = []
    for position, operator in enumerate(operators):
        op = operator_name(model.OperatorCodes(operator.OpcodeIndex()))
        inputs = _indices(operator.InputsAsNumpy(), operator.InputsLength())
        outputs = _indices(operator.OutputsAsNumpy(), operator.OutputsLength())
        own = [index for index in inputs if index in constant and index not in charged_tensors]
        buffers = {constant[index] for index in own} - charged_buffers
        charged_tensors.update(own)
        charged_buffers.update(buffers)
        output_shape = _shape(graph.Tensors(outputs[0])) if outputs else []
        macs = _macs(op, [_shape(graph.Tensors(index)) for index in inputs], output_shape)
        kind = MAC_KINDS.get(op)
        cycles = costs.cycles(kind, macs)
        live = sum(sizes[index] for index, (start, stop) in lifetimes.items() if start <= position <= stop)
        rows.append(
            OperatorCost(
                index=position,
                op=op,
                kind=kind,
                output_shape=output_shape,
                macs=macs,
                weight_bytes=sum(stored[buffer] for buffer in buffers),
                quantization_bytes=sum(_quantization_bytes(graph.Tensors(index)) for index in own),
                input_bytes=sum(sizes[index] for index in inputs if index in sizes),
                output_bytes=sum(sizes[index] for index in outputs if index in sizes),
                live_bytes=live,
                arena_share=None,
                cycles=cycles,
                ms=costs.milliseconds(cycles),
            )
        )
    peak = max(rows, key=lambda row: row.live_bytes, default=None)
    return ModelAnalysis(
        model=name,
        operators=rows,
        flash_bytes=len(content),
        weight_bytes=sum(stored.values()),
        quantization_bytes=sum(_quantization_bytes(graph.Tensors(index)) for index in constant),
        arena_bytes=None,
        arena_source=PEAK_ONLY,
        peak_activation_bytes=0 if peak is None else peak.live_bytes,
        peak_operator=None if peak is None else peak.index,
        costs=costs,
        subgraphs=model.SubgraphsLength(),
    )


def _indices(values: Any, length: int) -> list[int]:
    """Tensor indices of an operator's inputs or outputs, optional ones (-1) left out."""
    return [int(index) for index in values if index >= 0] if length else []


# --- a run or a file -------------------------------------------------------------------------------------------


def model_file(path: str | Path, variant: str | None = None) -> tuple[Path, Path | None]:
    """The ``.tflite`` file to analyse and, for a run, its ``edge/`` folder (None for a bare file).

    Args:
        path: a run directory (its exported ``variant``) or a ``.tflite`` file.
        variant: a run's exported variant, e.g. ``int8`` (the default) or ``int8_qat``.

    Raises:
        UserError: a missing path, ``--variant`` with a file, an unknown variant, or a run without that export.
    """
    path = Path(path)
    if path.is_file():
        if variant is not None:
            raise UserError(f"--variant chooses a run's exported model; {path} is a file: drop --variant")
        return path, None
    if not path.is_dir():
        raise UserError(
            f"{path} does not exist; pass a run directory written by 'python cli.py train' and exported, "
            "e.g. runs/train/digits-mlp-1, or a .tflite file"
        )
    name = variant or DEFAULT_VARIANT
    known = {**VARIANTS, **COMPRESSED_VARIANTS}
    if name not in known:
        raise unknown_choice("variant", name, known)
    edge_dir = path / "edge"
    file = edge_dir / known[name].filename
    if not file.is_file():
        fix = f"--quantization {name}" if name in VARIANTS else "--prune and/or --qat"
        raise UserError(f"{path} has no edge/{file.name}; export it first: python cli.py export {path} {fix}")
    return file, edge_dir


def recorded_arena(edge_dir: Path, variant: str) -> int | None:
    """The arena export measured for ``variant`` (``edge/report.json``), or None when it recorded none."""
    try:
        report = json.loads((edge_dir / REPORT_NAME).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(report, dict):
        return None
    compression = report.get("compression") or {}
    micro = report.get("micro") if variant == DEFAULT_VARIANT else None
    if isinstance(compression, dict) and compression.get("variant") == variant:
        micro = compression.get("micro")
    arena = micro.get("arena_bytes") if isinstance(micro, dict) else None
    return arena if isinstance(arena, int) and arena > 0 else None


def measure_model_arena(content: bytes) -> int | None:
    """The smallest TFLite Micro arena of a single-input model, run on zeros (the arena does not depend on the
    values); None when ``tflite-micro`` is not installed or cannot run the model."""
    from edge.micro import measure_arena

    model = read_model(content)
    graph = model.Subgraphs(0) if model.SubgraphsLength() else None
    if graph is None or graph.InputsLength() != 1:
        return None
    tensor = graph.Tensors(int(graph.Inputs(0)))
    dtype = _NUMPY_TYPES.get(tensor.Type())
    if dtype is None:
        return None
    return measure_arena(content, np.zeros(_shape(tensor), dtype=dtype))


@dataclass
class AnalysisResult:
    """A report and, for a run, the files written into its ``edge/`` folder."""

    analysis: ModelAnalysis
    written: list[Path]


def analyze_path(
    path: str | Path, costs: CycleCosts, variant: str | None = None, measure_arena: bool = True
) -> AnalysisResult:
    """Analyse a run's exported model (writing ``edge/analysis.json`` and ``edge/plots/analysis.png``) or a file.

    The arena is the one export measured for the variant (``edge/report.json``), else measured now with the
    TFLite Micro host interpreter when it is installed, else left out (RAM is then the activations' peak). A
    variant other than int8 is written as ``analysis_<variant>.json`` and ``plots/analysis_<variant>.png``.

    Args:
        path: a run directory or a ``.tflite`` file.
        costs: the target's cycles per MAC by kind and its clock.
        variant: a run's exported variant (default int8).
        measure_arena: whether to measure an arena that was not recorded.

    Raises:
        UserError: see :func:`model_file` and :func:`analyze_model`.
    """
    file, edge_dir = model_file(path, variant)
    content = file.read_bytes()
    name = variant or DEFAULT_VARIANT
    analysis = analyze_model(content, costs, file.name)
    arena = recorded_arena(edge_dir, name) if edge_dir is not None else None
    if arena is not None:
        analysis.with_arena(arena, ARENA_AT_EXPORT)
    elif measure_arena and (measured := measure_model_arena(content)) is not None:
        analysis.with_arena(measured, ARENA_MEASURED)
    if edge_dir is None:
        return AnalysisResult(analysis, [])
    report_name, plot_name = output_names(name)
    report = write_json(edge_dir / report_name, analysis.to_dict())
    plot_analysis(analysis, edge_dir / plot_name)
    from recipes.report_page import write_report

    write_report(edge_dir.parent)  # the run's page shows the estimate and the figure
    return AnalysisResult(analysis, [report, edge_dir / plot_name])


def output_names(variant: str) -> tuple[str, str]:
    """The report's and the plot's names inside ``edge/`` for ``variant``: ``analysis.json`` and
    ``plots/analysis.png`` for int8, e.g. ``analysis_int8_qat.json`` for another."""
    suffix = "" if variant == DEFAULT_VARIANT else f"_{variant}"
    return f"analysis{suffix}.json", f"plots/analysis{suffix}.png"


def plot_analysis(analysis: ModelAnalysis, path: Path) -> None:
    """Bar charts of where the bytes and the estimated time go, one bar group per operator, to a PNG.

    Left: weight bytes and live activation bytes per operator; right: estimated milliseconds on the target.
    """
    from recipes.plots import load_pyplot, save_figure

    rows = analysis.operators
    labels = [f"{row.index} {row.op}" for row in rows]
    positions = np.arange(len(rows))
    pyplot = load_pyplot()
    figure, (memory, timing) = pyplot.subplots(1, 2, figsize=(12, max(3.0, 0.35 * len(rows) + 1.5)), sharey=True)
    try:
        height = 0.4
        memory.barh(positions - height / 2, [row.weight_bytes for row in rows], height, label="weights (flash)")
        memory.barh(positions + height / 2, [row.live_bytes for row in rows], height, label="live activations (RAM)")
        memory.set_xlabel("bytes")
        memory.set_title(f"Bytes per operator (flash {analysis.flash_bytes:,}, RAM {analysis.ram_bytes:,})")
        memory.legend()
        timing.barh(positions, [row.ms for row in rows], 0.6, color="tab:green")
        timing.set_xlabel("estimated ms")
        timing.set_title(f"Estimated time on {analysis.costs.target} ({analysis.latency_ms:.3g} ms)")
        for axis in (memory, timing):
            axis.grid(alpha=0.3, axis="x")
        memory.set_yticks(positions, labels)
        memory.invert_yaxis()
        figure.suptitle(f"{analysis.model}: where the bytes and the time go (estimates, not measurements)")
        figure.tight_layout()
        save_figure(figure, path)
    finally:
        pyplot.close(figure)
