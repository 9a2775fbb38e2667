"""``manifest.json``: what an export says about each model file (format, labels, threshold, front end), checked
before anything is trusted (:class:`ManifestEntry`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.device.errors import UserError
from edge.device.preprocessing import Standardization
from edge.device.series_files import RESAMPLED
from edge.device.tasks import TASKS
from edge.device.windows import FRONT_ENDS
from edge.device.windows import KIND as WINDOWS

MANIFEST_NAME = "manifest.json"
# Format 2 added ``task``, ``anomaly`` (threshold and decision rule) and ``front_end``; a manifest without
# ``task`` describes a classifier. Format 3 added per variant ``standardization`` (the z-score applied in front
# of a full-integer model) and ``failing``; a regression (format 3 still) adds ``target_names`` and per full-integer
# variant ``output_standardization`` (the int8 model outputs z-scores). This runtime reads formats 1 to 3.
MANIFEST_FORMAT = 3


@dataclass(frozen=True)
class ManifestEntry:
    """What the manifest beside a model says about it.

    Args:
        sha256: the hash of the file the manifest describes.
        class_names: the class labels (a classifier).
        threshold: the anomaly threshold (an anomaly detector), else None.
        front_end: the audio front end's parameters (a model of audio features), else None.
        standardization: the z-score the runtime applies before a model converted without its own, else None.
        failing: the export marked the model as outside its tolerance.
        target_names: a regression's output names, else None.
        output_standardization: a regression's target statistics, for a model that outputs z-scores, else None.
        task: the manifest's ``task``, a row of :data:`edge.device.tasks.TASKS` (a manifest of format 1, without
            one, describes a classifier).
    """

    sha256: str | None
    class_names: list[str] | None
    threshold: float | None
    front_end: dict[str, Any] | None
    standardization: Standardization | None = None
    failing: bool = False
    target_names: list[str] | None = None
    output_standardization: Standardization | None = None
    task: str = "classification"


def manifest_entry(path: Path) -> ManifestEntry | None:
    """What the manifest beside ``path`` says about it; None when there is no manifest beside it.

    Raises:
        UserError: the manifest is damaged, of a format newer than this runtime reads, or does not list the file (a
            model dropped into an export's folder would otherwise run unchecked, under that export's labels).
    """
    manifest_path = path.parent / MANIFEST_NAME
    if not manifest_path.is_file():
        return None
    damaged = f"{manifest_path} is damaged; export again or remove it to run without labels"
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
        listed = isinstance(files, dict) and path.name in files
        version = manifest["format"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
        raise UserError(damaged) from None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError(damaged)
    if version > MANIFEST_FORMAT:
        raise UserError(
            f"{manifest_path} has format {version}, newer than this runtime reads ({MANIFEST_FORMAT}); run the model "
            "with the lib/ of its own export (python predict.py), or update this project"
        )
    if not listed:  # a model dropped beside an export's manifest would otherwise run unchecked, with its labels
        raise UserError(
            f"{path} is not listed in the {MANIFEST_NAME} beside it, so it is not a file of that export and "
            "cannot be checked; run it from a folder without that manifest, or export again"
        )
    try:
        threshold = float(manifest["anomaly"]["threshold"]) if manifest.get("task") == "anomaly" else None
        variant = next(
            (
                entry
                for entry in (manifest.get("variants") or {}).values()
                if isinstance(entry, dict) and entry.get("file") == path.name
            ),
            {},
        )
        standardization = variant.get("standardization")
        output = variant.get("output_standardization")
        target_names = manifest.get("target_names") if manifest.get("task") == "regression" else None
        entry = ManifestEntry(
            files[path.name].get("sha256"),
            _names(manifest.get("class_names")),
            threshold,
            manifest.get("front_end"),
            None if standardization is None else Standardization.from_dict(standardization, str(manifest_path)),
            variant.get("failing") is True,
            _names(target_names),
            None if output is None else Standardization.from_dict(output, str(manifest_path)),
            manifest.get("task", "classification"),
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
        raise UserError(damaged) from None
    if (
        not isinstance(entry.task, str)
        or entry.task not in TASKS
        or (threshold is not None and not math.isfinite(threshold))
    ):
        raise UserError(damaged)
    if _front_end_damaged(entry.front_end):
        raise UserError(damaged)
    return entry


def _names(value: Any) -> list[str] | None:
    """A manifest's class labels or target names as text; None when it has none.

    Raises:
        TypeError: not a flat list of texts or numbers (the caller reads the manifest as damaged).
    """
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(name, str | int | float) for name in value):
        raise TypeError("names must be a list of texts")
    return [str(name) for name in value]


MAX_FRONT_END_COUNT = 1 << 24  # a front end's sample, step, bin or band count: far above any real one


def _front_end_damaged(front_end: Any) -> bool:
    """Whether a manifest's front end is unusable: not a mapping, or a parameter the runtime computes features with
    of the wrong type or out of range (numpy would fail on it with a traceback, or quietly compute NaNs). A missing
    audio parameter is left to :func:`edge.device.mfcc.wav_features`, which names it."""
    if front_end is None:
        return False
    if not isinstance(front_end, dict):
        return True
    if front_end.get("kind") == WINDOWS:
        channels = front_end.get("channels")
        counts = ("window_steps", "stride_steps", *(("bands",) if front_end.get("front_end") == "spectral" else ()))
        rate = front_end.get("sample_rate")
        return (
            front_end.get("front_end") not in FRONT_ENDS
            or not ((_finite(rate) and rate > 0) or rate is None)  # None: series of unknown rate
            or front_end.get("lengths", "equal") not in ("equal", RESAMPLED)
            or not all(_count(front_end.get(key)) for key in counts)
            or not (isinstance(channels, list) and channels and all(isinstance(name, str) for name in channels))
        )
    counts = ("window_samples", "stride_samples", "fft_length", "mel_bins", "mfcc_coefficients")
    numbers = ("sample_rate", "lower_hz", "upper_hz", "log_offset")
    if any(key in front_end and not _count(front_end[key]) for key in counts):
        return True
    if any(key in front_end and not _finite(front_end[key]) for key in numbers):
        return True
    get = front_end.get
    return (
        (get("lower_hz", 0) < 0 or get("upper_hz", math.inf) <= get("lower_hz", 0))
        or get("log_offset", 1) <= 0
        or get("mfcc_coefficients", 1) > get("mel_bins", math.inf)
    )


def _count(value: Any) -> bool:
    """A positive whole number up to :data:`MAX_FRONT_END_COUNT` (a JSON integer, not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_FRONT_END_COUNT


def _finite(value: Any) -> bool:
    """A finite JSON number (not a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
