"""The training configuration: every default and its meaning in one place.

A :class:`TrainConfig` loads from YAML (:func:`load_config`), takes ``key=value`` overrides
(:func:`apply_overrides`) and is checked by :func:`validate`. Unknown keys are an error that
suggests the closest valid key. This module imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge.device.errors import UserError, closest, unknown_choice
from edge.device.limits import MAX_BLOCKS, MAX_FILTERS, MAX_IMAGE_SIDE, MAX_SEED, MAX_UNITS
from edge.device.windows import FRONT_ENDS
from recipes.adaptive_defaults import AUTO
from recipes.registry import REGISTRY, recipe_named
from recipes.tasks import TASK_CHOICES

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
SCHEDULES = ("constant", "inverse_time", "exponential", "inverse_sqrt", "step")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid", "linear")
INITIALIZERS = (
    "auto",
    "he",
    "xavier",
    "he_normal",
    "he_uniform",
    "glorot_normal",
    "glorot_uniform",
    "lecun_normal",
    "lecun_uniform",
)
FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")


def _doc(text: str, default: Any) -> Any:
    """A dataclass field with its meaning attached (shown by ``python cli.py train --help-config``)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": text})
    return field(default=default, metadata={"doc": text})


@dataclass
class TrainConfig:
    """Everything a training run needs. Each field's ``doc`` metadata says what it means."""

    # --- what to train on what -------------------------------------------------------------
    recipe: str = _doc(
        f"model architecture: {', '.join(REGISTRY)} (python cli.py recipes describes each)",
        "mlp",
    )
    data: str = _doc(
        "built-in set (digits, iris, wine, breast_cancer, machine; regressions diabetes, linnerud; the IMU stream "
        "motion) or a path: "
        ".csv, .npz, or a folder "
        "with one subfolder per class of images or of .wav clips (mono PCM, 1 s; MFCCs computed on load)",
        "digits",
    )
    label: str = _doc(
        "CSV column that holds the label; several columns separated by commas (a regression with one output each)",
        "label",
    )
    task: str = _doc(
        "what to learn: auto (regression when the label is numeric with more than 20 distinct values and more "
        "than 5% of the rows, else classification), classification or regression; the autoencoder detects "
        "anomalies",
        "auto",
    )
    image_size: list[int] | None = _doc(
        "height,width images from a folder are resized to; default: the first image's size", None
    )
    split: list[float] | None = _doc(
        "train,dev,test fractions; default by size: <=100k 60/20/20, <=2M 98/1/1, else 99.5/0.25/0.25",
        None,
    )
    seed: int = _doc("seed for Python, numpy, Keras and the split; also makes TF ops deterministic", 0)
    window_seconds: float | None = _doc(
        "time series: cut a CSV stream (one row per sample) into windows of this many seconds; motion's default 2",
        None,
    )
    window_stride_seconds: float | None = _doc(
        "time series: seconds between window starts; default half a window", None
    )
    sample_rate: float | None = _doc("time series: samples per second; default from the stream's time column", None)
    group: str | None = _doc(
        "time series: the column naming each recording (a recording stays in one split); default 'recording' when "
        "the stream has it",
        None,
    )
    front_end: str = _doc(
        "time series: what the model sees of a window: raw (its samples) or spectral (per channel mean, RMS, "
        "peak frequency and log band energies)",
        "raw",
    )
    min_label_share: float = _doc(
        "time series: a window's majority label must hold this share of its samples, else the window is dropped",
        0.8,
    )
    spectral_bands: int = _doc("time series: frequency bands of the spectral front end, per channel", 8)
    normal_class: str = _doc(
        "anomaly task (autoencoder): the class of normal examples, every other class is an anomaly; "
        "when no class has this name, class 0",
        "normal",
    )

    # --- architecture ------------------------------------------------------------------------
    hidden_units: list[int] = _doc("dense hidden layers (mlp body, cnn head), units each", [256, 128])
    activation: str = _doc("hidden activation: " + ", ".join(ACTIVATIONS), "relu")
    conv_filters: list[int] = _doc("cnn: filters of each conv block (each block ends in pooling)", [32, 64])
    convs_per_block: int = _doc("cnn: conv layers in each block", 1)
    kernel_size: int = _doc("cnn: square conv kernel size", 3)
    pool_size: int = _doc("cnn: max-pooling size after each block", 2)
    initializer: str = _doc(
        "kernel initializer; auto picks he (Var 2/n_in) for the ReLU family and xavier (Var 1/n_in) "
        "for tanh/sigmoid/linear (reference recipes: the reference's, he for mobilenet_v1 and resnet8, "
        "glorot_uniform for ds_cnn and autoencoder); any of: " + ", ".join(INITIALIZERS),
        "auto",
    )
    batch_norm: bool = _doc(
        "BatchNorm between each linear layer and its activation (mlp, cnn; the reference recipes always "
        "have it, as their references)",
        False,
    )
    batch_norm_momentum: float | str = _doc(
        "beta of BatchNorm's running mean and variance (an exponentially weighted average of batch "
        "statistics); auto: 1 - 1/(steps an epoch) within [0.9, 0.99], so the statistics settle within about an "
        "epoch (0.99, Keras's and the references' value, needs a few hundred steps)",
        "auto",
    )
    width_multiplier: float = _doc(
        "reference recipes: scales every layer's width; 1 = the reference (ds_cnn 64 filters, "
        "mobilenet_v1 alpha 0.25 = 8 first filters, resnet8 16 first filters, autoencoder 128 units)",
        1.0,
    )
    blocks: int | None = _doc(
        "reference recipes: repeated blocks; default the reference's: ds_cnn 4 depthwise-separable "
        "blocks, mobilenet_v1 13 (at most 13), resnet8 3 residual stacks, autoencoder 4 dense layers "
        "per side",
        None,
    )
    bottleneck_units: int = _doc("autoencoder: units of the bottleneck layer", 8)
    rocket_features: int = _doc(
        "minirocket: features (kernel, dilation, bias), spread over its 84 fixed kernels and up to 32 dilations "
        "(MiniRocket itself uses 9,996)",
        1008,
    )
    rocket_ramp: float = _doc(
        "minirocket: width of the ramp that stands for MiniRocket's step (proportion of positive values), in units "
        "of the spread of each convolution's output; smaller is closer to the step, larger rounds better in int8",
        0.5,
    )

    # --- regularization ----------------------------------------------------------------------
    l2: float = _doc("L2 lambda: adds lambda/(2m) * sum ||W||^2 to the cost (m = training examples)", 0.0)
    l1: float = _doc("L1 lambda: adds lambda/(2m) * sum |W| to the cost (m = training examples)", 0.0)
    dropout: float = _doc(
        "inverted dropout: probability of dropping a hidden unit (1 - keep_prob); ds_cnn drops this "
        "after its first conv and twice this before pooling (the reference's 0.2 and 0.4); mobilenet_v1, "
        "resnet8 and autoencoder have none, as their references",
        0.2,
    )
    weight_decay: float | None = _doc(
        "c adding c * sum ||W||^2 to every batch's loss (Keras-style, independent of m; on top of l2); "
        "default the recipe's reference: 1e-4 for ds_cnn, mobilenet_v1, resnet8, else 0",
        None,
    )
    noise_stddev: float = _doc("tabular augmentation: Gaussian noise in units of each feature's training std", 0.0)
    flip: str = _doc("image augmentation: none, horizontal, vertical, horizontal_and_vertical", "none")
    rotation: float = _doc("image augmentation: max rotation as a fraction of a full turn", 0.0)
    translation: float = _doc("image augmentation: max shift as a fraction of height/width", 0.0)
    zoom: float = _doc("image augmentation: max zoom in/out as a fraction", 0.0)
    time_shift: float = _doc(
        "time-series augmentation (raw windows): shift each window by up to this fraction of its length", 0.0
    )
    amplitude_scale: float = _doc(
        "time-series augmentation (raw windows): scale each window about the channel means by 1 ± up to this", 0.0
    )

    # --- optimization ------------------------------------------------------------------------
    epochs: int | str = _doc(
        "maximum passes over the training split; auto: enough for 1,500 gradient steps, at least 100, at most 1,000",
        "auto",
    )
    batch_size: int | str = _doc(
        "examples per gradient step: a power of two for mini-batch, 1 for stochastic, 'full' for batch; auto: the "
        "largest power of two at most (training examples)/10, between 16 and 64",
        "auto",
    )
    optimizer: str = _doc("sgd, momentum, rmsprop or adam", "adam")
    learning_rate: float = _doc("initial learning rate alpha0", 0.001)
    momentum: float = _doc("momentum: beta of the velocity average", 0.9)
    rho: float = _doc("rmsprop: beta of the squared-gradient average", 0.9)
    beta_1: float = _doc("adam: beta1 of the first moment", 0.9)
    beta_2: float = _doc("adam: beta2 of the second moment", 0.999)
    epsilon: float = _doc("rmsprop/adam: epsilon added to the denominator", 1e-8)
    schedule: str = _doc("learning-rate schedule per epoch: " + ", ".join(SCHEDULES), "constant")
    decay_rate: float = _doc("inverse_time: alpha = alpha0 / (1 + decay_rate * epoch)", 1.0)
    exponential_rate: float = _doc("exponential: alpha = alpha0 * exponential_rate ** epoch", 0.95)
    inverse_sqrt_k: float = _doc("inverse_sqrt: alpha = k * alpha0 / sqrt(epoch + 1)", 1.0)
    step_epochs: int = _doc("step: epochs between drops", 10)
    step_factor: float = _doc("step: alpha = alpha0 * step_factor ** floor(epoch / step_epochs)", 0.5)
    early_stopping: bool = _doc(
        "stop when the dev split stops improving and keep the best epoch's weights: a classifier's best epoch has "
        "the highest dev accuracy (ties: the lowest dev loss), other tasks' the lowest dev loss",
        True,
    )
    patience: int | str = _doc(
        "early stopping: epochs without a better epoch or a lower dev loss before stopping; auto: enough for 300 "
        "gradient steps, at least 10",
        "auto",
    )
    min_delta: float = _doc("early stopping: smallest dev-loss decrease that counts", 0.0)

    # --- output --------------------------------------------------------------------------------
    out: str = _doc("root folder of run directories (runs/train/<name>-<n>/ below it)", "runs")
    name: str | None = _doc("run name; default <data>-<recipe>", None)
    cache_dir: str | None = _doc(
        "folder of the feature cache (decoded images, MFCCs of a WAV folder) that later runs reuse; default "
        "<out>/cache",
        None,
    )
    checkpoint_seconds: float = _doc(
        "train: write a checkpoint for --resume after an epoch once this many seconds passed since the last; 0: "
        "after every epoch",
        60.0,
    )
    in_memory_mb: float = _doc(
        "a folder's features larger than this many MiB stay in the cache on disk and are read a batch at a time",
        1024.0,
    )
    bayes_error: float = _doc(
        "optimal (human-level) error estimate used by the diagnosis: an error rate for a classifier, an RMSE in "
        "target units for a regression",
        0.0,
    )

    def to_dict(self) -> dict[str, Any]:
        """The config as plain YAML-able data."""
        return dataclasses.asdict(self)

    def run_name(self) -> str:
        """The run's name: ``name`` or ``<data stem>-<recipe>``; a data folder or file named for its part of a data
        set (``speech/train``, ``GunPoint_TRAIN.ts`` keeps its own name) takes its parent's name in front:
        ``speech-train-ds_cnn``."""
        if self.name:
            return self.name
        path = Path(self.data)
        stem = path.stem or "data"
        parent = path.absolute().parent.name
        if stem.lower() in GENERIC_DATA_NAMES and parent:
            stem = f"{parent}-{stem}"
        return f"{stem}-{self.recipe}"


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
# Names that say which part of a data set a folder or file holds, not which data set: a run takes the parent's too.
GENERIC_DATA_NAMES = frozenset(
    {"train", "training", "test", "testing", "dev", "valid", "validation", "data", "dataset"}
)


def weight_decay_of(config: TrainConfig) -> float:
    """The weight decay c of ``config``: its own, else its recipe's reference value, else 0."""
    if config.weight_decay is not None:
        return config.weight_decay
    return recipe_named(config.recipe).weight_decay


def describe_fields() -> list[tuple[str, str, str]]:
    """(name, default, meaning) for every field, in declaration order."""
    default = TrainConfig()
    return [(name, repr(getattr(default, name)), f.metadata["doc"]) for name, f in FIELDS.items()]


def _unknown_key(key: str) -> UserError:
    return UserError(
        f"unknown config key '{key}'{closest(key, FIELDS)} (python cli.py train --help-config lists every key)"
    )


def _coerce(key: str, value: Any) -> Any:
    """Convert ``value`` (from YAML or a ``key=value`` string) to the type of field ``key``."""
    annotation = typing.get_type_hints(TrainConfig)[key]
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    if isinstance(value, str) and value.strip().lower() in ("none", "null", "") and type(None) in options:
        return None
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _coerce_to(option, value)
        except (TypeError, ValueError) as error:
            errors.append(str(error))
    wanted = " or ".join(_type_name(o) for o in options)
    raise UserError(f"{key}={value!r} is not valid: expected {wanted}")


def _type_name(option: Any) -> str:
    if typing.get_origin(option) is list:
        return f"a comma-separated list of {typing.get_args(option)[0].__name__}"
    return "null" if option is type(None) else option.__name__


def _coerce_to(option: Any, value: Any) -> Any:
    if typing.get_origin(option) is list:
        (item_type,) = typing.get_args(option)
        if isinstance(value, str):
            value = [part for part in value.replace("[", "").replace("]", "").split(",") if part.strip()]
        elif not isinstance(value, (list, tuple)):
            value = [value]
        return [_coerce_to(item_type, item) for item in value]
    if option is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    if option is int:
        if isinstance(value, bool):
            raise ValueError("boolean is not an integer")
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, float):
            if not number.is_integer():
                raise ValueError(f"not an integer: {value!r}")
            number = int(number)
        return int(number)
    if option is float:
        if isinstance(value, bool):
            raise ValueError("boolean is not a number")
        return float(value)
    if option is str:
        if isinstance(value, (list, dict)):
            raise ValueError("not a string")
        return str(value).strip()
    raise TypeError(f"unsupported field type {option}")


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Return a copy of ``config`` with ``overrides`` applied (values coerced to the field types)."""
    changes = {}
    for key, value in overrides.items():
        key = key.strip().replace("-", "_")
        if key not in FIELDS:
            raise _unknown_key(key)
        changes[key] = _coerce(key, value)
    return dataclasses.replace(config, **changes)


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """Turn ``["epochs=5", "split=0.8,0.1,0.1"]`` into a dict; a missing ``=`` is an error."""
    parsed = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got '{item}' (e.g. --set dropout=0.2)")
        parsed[key.strip()] = value.strip()
    return parsed


def load_config(path: str | Path) -> TrainConfig:
    """Load a YAML file of config keys on top of the defaults."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist; pass an existing YAML file to --config")
    from recipes.safe_yaml import read_yaml

    data = read_yaml(path, "config file") or {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of key: value lines")
    return apply_overrides(TrainConfig(), data)


def save_config(config: TrainConfig) -> str:
    """The resolved config as YAML text, keys in declaration order."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise UserError(message)


def _check_sizes(config: TrainConfig) -> None:
    """Widths, depths and sizes within :mod:`edge.device.limits`, and augmentation within what Keras's layers take:
    checked before anything is built, so a typo cannot ask for gigabytes of weights."""
    for key, values, limit in (
        ("hidden_units", config.hidden_units, MAX_UNITS),
        ("conv_filters", config.conv_filters, MAX_FILTERS),
        ("image_size", config.image_size or [], MAX_IMAGE_SIDE),
    ):
        for value in values:
            _check(1 <= value <= limit, f"{key} values must be in 1..{limit:,}, got {value}; see the README's Limits")
    # upper bounds only: the lower ones are checked with the other values
    _check(
        config.blocks is None or config.blocks <= MAX_BLOCKS,
        f"blocks must be in 1..{MAX_BLOCKS}, got {config.blocks}; see the README's Limits",
    )
    for key, value, limit in (
        ("bottleneck_units", config.bottleneck_units, MAX_UNITS),
        ("kernel_size", config.kernel_size, 64),
        ("pool_size", config.pool_size, 64),
        ("convs_per_block", config.convs_per_block, 16),
    ):
        _check(value <= limit, f"{key} must be at most {limit}, got {value}")
    _check(config.width_multiplier <= 16, f"width_multiplier must be at most 16, got {config.width_multiplier}")
    _check(config.rotation <= 1.0, f"rotation is a fraction of a full turn in [0, 1], got {config.rotation}")
    _check(config.translation <= 1.0, f"translation is a fraction of height/width in [0, 1], got {config.translation}")
    _check(config.zoom < 1.0, f"zoom is a fraction in [0, 1), got {config.zoom}; e.g. --set zoom=0.1")


def validate(config: TrainConfig) -> TrainConfig:
    """Check every value; raise :class:`UserError` naming the key and the fix. Returns ``config``."""
    for key, allowed in (
        ("recipe", tuple(REGISTRY)),
        ("optimizer", OPTIMIZERS),
        ("schedule", SCHEDULES),
        ("activation", ACTIVATIONS),
        ("initializer", INITIALIZERS),
        ("flip", FLIPS),
        ("task", TASK_CHOICES),
    ):
        if getattr(config, key) not in allowed:
            raise unknown_choice(key, getattr(config, key), allowed)
    for key in ("learning_rate", "epsilon", "decay_rate", "inverse_sqrt_k"):
        value = getattr(config, key)
        _check(math.isfinite(value) and value > 0, f"{key} must be > 0, got {value}; e.g. --set {key}=0.001")
    for key, least in (("epochs", 1), ("patience", 0)):
        value = getattr(config, key)
        if isinstance(value, str):
            _check(value == AUTO, f"{key} must be an integer or 'auto', got '{value}'; e.g. --set {key}=20")
        else:
            _check(value >= least, f"{key} must be at least {least}, got {value}; e.g. --set {key}=20")
    _check(0 <= config.seed <= MAX_SEED, f"seed must be in [0, {MAX_SEED}] (a 32-bit seed), got {config.seed}")
    if isinstance(config.batch_size, str):
        _check(
            config.batch_size in ("full", AUTO),
            f"batch_size must be a positive integer, 'full' or 'auto', got '{config.batch_size}'",
        )
    else:
        _check(
            config.batch_size >= 1,
            f"batch_size must be at least 1 (or 'full'), got {config.batch_size}; e.g. --batch-size 64",
        )
    _check(
        0.0 <= config.dropout < 1.0,
        f"dropout is a drop probability in [0, 1), got {config.dropout}; e.g. --set dropout=0.2",
    )
    for key in ("momentum", "rho", "beta_1", "beta_2", "batch_norm_momentum"):
        value = getattr(config, key)
        if key == "batch_norm_momentum" and isinstance(value, str):
            _check(value == AUTO, f"{key} must be in [0, 1) or 'auto', got '{value}'; e.g. --set {key}=0.9")
            continue
        _check(0.0 <= value < 1.0, f"{key} must be in [0, 1), got {value}; e.g. --set {key}=0.9")
    _check(
        0.0 <= config.time_shift <= 0.5, f"time_shift is a fraction of the window in [0, 0.5], got {config.time_shift}"
    )
    _check(
        0.0 <= config.amplitude_scale < 1.0, f"amplitude_scale is a fraction in [0, 1), got {config.amplitude_scale}"
    )
    for key in ("l1", "l2", "noise_stddev", "rotation", "translation", "zoom", "min_delta"):
        value = getattr(config, key)
        _check(math.isfinite(value) and value >= 0, f"{key} must be >= 0, got {value}")
    _check(0 < config.exponential_rate <= 1, f"exponential_rate must be in (0, 1], got {config.exponential_rate}")
    _check_sizes(config)
    _check(0 < config.step_factor <= 1, f"step_factor must be in (0, 1], got {config.step_factor}")
    _check(config.step_epochs >= 1, f"step_epochs must be at least 1, got {config.step_epochs}")
    _check(
        math.isfinite(config.bayes_error) and config.bayes_error >= 0,
        f"bayes_error is an error rate in [0, 1) or a regression's RMSE >= 0, got {config.bayes_error}",
    )
    _check(
        all(units >= 1 for units in config.hidden_units),
        f"hidden_units must all be >= 1, got {config.hidden_units}",
    )
    _check(
        all(filters >= 1 for filters in config.conv_filters),
        f"conv_filters must all be >= 1, got {config.conv_filters}",
    )
    _check(
        84 <= config.rocket_features <= 20000,
        f"rocket_features must be in [84, 20000] (84 kernels, at least one feature each), got {config.rocket_features}",
    )
    _check(
        math.isfinite(config.rocket_ramp) and 0 < config.rocket_ramp <= 10,
        f"rocket_ramp must be in (0, 10], got {config.rocket_ramp}; e.g. --set rocket_ramp=0.1",
    )
    if config.front_end not in FRONT_ENDS:
        raise unknown_choice("front_end", config.front_end, FRONT_ENDS)
    front_ends = recipe_named(config.recipe).front_ends
    _check(
        config.front_end in front_ends,
        f"the {config.recipe} recipe convolves over time, so it takes raw windows, not the {config.front_end} front "
        f"end's features; use --set front_end=raw, or --recipe mlp for {config.front_end} features",
    )
    for key in ("convs_per_block", "kernel_size", "pool_size", "bottleneck_units"):
        _check(getattr(config, key) >= 1, f"{key} must be at least 1, got {getattr(config, key)}")
    _check(
        math.isfinite(config.width_multiplier) and config.width_multiplier > 0,
        f"width_multiplier must be > 0, got {config.width_multiplier}; e.g. --set width_multiplier=0.5",
    )
    if config.blocks is not None:
        _check(config.blocks >= 1, f"blocks must be at least 1, got {config.blocks}; e.g. --set blocks=2")
    if config.weight_decay is not None:
        _check(
            math.isfinite(config.weight_decay) and config.weight_decay >= 0,
            f"weight_decay must be >= 0, got {config.weight_decay}; e.g. --set weight_decay=1e-4",
        )
    recipe = recipe_named(config.recipe)
    if recipe.check is not None and (problem := recipe.check(config)) is not None:
        raise UserError(problem)
    if config.image_size is not None:
        _check(
            len(config.image_size) == 2 and all(side >= 1 for side in config.image_size),
            f"image_size is height,width, got {config.image_size}; e.g. --set image_size=32,32",
        )
    if config.split is not None:
        _check(
            len(config.split) == 3 and all(part > 0 for part in config.split),
            f"split is three positive fractions train,dev,test, got {config.split}; e.g. --set split=0.8,0.1,0.1",
        )
        _check(
            abs(sum(config.split) - 1.0) < 1e-6,
            f"split fractions must add up to 1, got {config.split} (sum {sum(config.split):g})",
        )
    _check(bool(config.out.strip()), "out must name a folder; e.g. --out runs")
    _check(
        math.isfinite(config.checkpoint_seconds) and config.checkpoint_seconds >= 0,
        f"checkpoint_seconds must be >= 0, got {config.checkpoint_seconds}; e.g. --set checkpoint_seconds=60",
    )
    _check(
        math.isfinite(config.in_memory_mb) and config.in_memory_mb >= 0,
        f"in_memory_mb must be >= 0, got {config.in_memory_mb}; e.g. --set in_memory_mb=1024",
    )
    return config


def resolve_config(
    config_file: str | Path | None = None,
    flags: dict[str, Any] | None = None,
    assignments: list[str] | None = None,
) -> TrainConfig:
    """Defaults, then the YAML file, then command-line flags (None = not given), then ``--set``. When none of them
    names a recipe, series (a ``.ts`` file, windows of a stream, the built-in ``motion``) get :data:`SERIES_RECIPE`
    on their raw samples (:func:`default_recipe`).

    Returns:
        The validated config.
    """
    config = load_config(config_file) if config_file else TrainConfig()
    given = {key: value for key, value in (flags or {}).items() if value is not None}
    config = apply_overrides(config, given)
    assigned = parse_assignments(assignments or [])
    config = apply_overrides(config, assigned)
    named = "recipe" in given or "recipe" in {key.strip().replace("-", "_") for key in assigned}
    if not named and not (config_file and "recipe" in _file_keys(config_file)):
        config = dataclasses.replace(config, recipe=default_recipe(config))
    return validate(config)


SERIES_RECIPE = "cnn1d"  # within 3 points of MiniRocket in int8 on 6 of the 10 UCR/UEA sets in the aeon wheel


def is_series(config: TrainConfig) -> bool:
    """Whether ``config``'s data is known to be time series before it is loaded: a ``.ts`` file, a stream cut into
    windows (``window_seconds``), or the built-in ``motion``."""
    return Path(config.data).suffix.lower() == ".ts" or config.window_seconds is not None or config.data == "motion"


def default_recipe(config: TrainConfig) -> str:
    """The recipe a run gets when none is named: :data:`SERIES_RECIPE` for series fed raw (:func:`is_series`), else
    the config's (``mlp``)."""
    return SERIES_RECIPE if is_series(config) and config.front_end == "raw" else config.recipe


def _file_keys(path: str | Path) -> set[str]:
    """The keys a config file sets."""
    from recipes.safe_yaml import read_yaml

    data = read_yaml(Path(path), "config file") or {}
    return {str(key).strip().replace("-", "_") for key in data} if isinstance(data, dict) else set()
