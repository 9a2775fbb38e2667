"""What an export produced: each variant's file, parity, operators and sizes, the compression and firmware it
wrote, as ``report.json`` holds them (:class:`ExportReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.compress import CompressedModel, CompressionSettings
from edge.firmware import Firmware
from edge.micro import MicroCheck
from edge.operators import OperatorReport
from edge.parity import AnomalyParity, Parity, RegressionParity
from edge.per_tensor import NarrowingResult
from edge.quantization_report import LayerError


@dataclass
class VariantResult:
    """One exported variant: its file, parity with Keras, operators, gzip size and weight sparsity."""

    name: str
    file: str
    bytes: int
    ratio_to_float32: float | None
    parity: Parity | AnomalyParity | RegressionParity
    operators: OperatorReport
    gzip_bytes: int
    sparsity: float
    quantization: NarrowingResult | None = None
    estimated_latency_ms: float | None = None
    latency_target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json``."""
        return {
            "name": self.name,
            "file": self.file,
            "bytes": self.bytes,
            "ratio_to_float32": self.ratio_to_float32,
            "gzip_bytes": self.gzip_bytes,
            "sparsity": self.sparsity,
            "estimated_latency_ms": self.estimated_latency_ms,
            "latency_target": self.latency_target,
            "weight_quantization": None if self.quantization is None else self.quantization.to_dict(),
            **{key: value for key, value in self.parity.to_dict().items() if key != "variant"},
            **self.operators.to_dict(),
        }


@dataclass
class CompressionReport:
    """What compression made: the compressed variant, how it was fine-tuned, and its TFLite Micro check.

    Args:
        variant: the compressed variant's name, e.g. ``int8_pruned_qat``.
        settings: the compression settings.
        model: the compressed model and its checks (twin and fusion differences, fused layers, QAT's kept epoch).
        history: the fine-tuning history's file name inside ``edge/``.
        micro: the variant's TFLite Micro check.
        micro_files: its C array files.
    """

    variant: str
    settings: CompressionSettings
    model: CompressedModel
    history: str
    micro: MicroCheck
    micro_files: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json``."""
        return {
            "variant": self.variant,
            "settings": self.settings.to_dict(),
            **self.model.to_dict(),
            "history": self.history,
            "micro": self.micro.to_dict(),
            "micro_files": self.micro_files,
        }


@dataclass
class ExportReport:
    """What an export wrote and measured.

    ``keras`` is what the Keras model scored on the test split, as the task's parity measures it (a classifier's
    ``keras_accuracy``, an anomaly detector's ``keras_auc`` at its ``threshold``, a regression's ``keras_r2`` and
    ``keras_mae``).
    """

    run_dir: Path
    edge_dir: Path
    variants: list[VariantResult]
    task: str
    keras: dict[str, Any]
    test_examples: int
    calibration: dict[str, Any]
    micro: MicroCheck | None
    micro_files: list[str]
    warnings: list[str] = field(default_factory=list)
    compression: CompressionReport | None = None
    layers: dict[str, list[LayerError]] = field(default_factory=dict)
    failing: dict[str, str] = field(default_factory=dict)
    written: bool = True
    kept_failing: bool = False
    firmware: Firmware | None = None

    def failure_lines(self, layers: int = 3) -> list[str]:
        """One line per variant outside its tolerance: what failed, what was done with it, where int8 loses most."""
        lines = []
        for name, shortfall in self.failing.items():
            kept = (
                "written anyway (--keep-failing), marked failing in the manifest"
                if self.kept_failing
                else "not written (--keep-failing writes it for inspection)"
            )
            worst = [row for row in self.layers.get(name, [])[:layers] if row.added > 0]
            where = (
                (
                    "; most signal lost at "
                    + ", ".join(f"{row.op} '{row.tensor[:48]}' (+{row.added:.0%})" for row in worst)
                )
                if worst
                else ""
            )
            lines.append(f"{name} is outside its tolerance: {shortfall}; {kept}{where}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json`` (paths relative to the run)."""
        return {
            "run": str(self.run_dir),
            "task": self.task,
            "split": "test",
            "test_examples": self.test_examples,
            **self.keras,
            "variants": [variant.to_dict() for variant in self.variants],
            "calibration": self.calibration,
            "micro": self.micro.to_dict() if self.micro else None,
            "micro_files": self.micro_files,
            "warnings": self.warnings,
            "failing": self.failing,
            "compression": None if self.compression is None else self.compression.to_dict(),
            "firmware": None if self.firmware is None else self.firmware.to_dict(),
        }
