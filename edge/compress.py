"""Compression with tensorflow-model-optimization: magnitude pruning, quantization-aware training, or both.

tfmot 0.8.1 works on tf_keras models only, so a run's Keras 3 model is first rebuilt as its tf_keras twin
(:mod:`edge.twin`) and rewritten into the form tfmot quantizes faithfully (:mod:`edge.fusion`); both steps
are checked to leave the outputs unchanged. The z-score layer is then split off
(:func:`edge.convert.split_standardization`): an int8 model takes z-scored inputs, so fine-tuning runs on
the model after it, fed the run's examples z-scored with the same statistics. Then, on the run's training
split with the run's batch size and augmentation, dev split for validation:

- **pruning** wraps every Dense/Conv2D/DepthwiseConv2D in ``prune_low_magnitude`` with a polynomial-decay
  schedule that reaches the target sparsity at the start of the last of ``prune_epochs`` epochs (the last
  epoch recovers at the final mask), then ``strip_pruning``. Dense kernels are pruned in blocks of
  ``prune_block`` consecutive inputs of one unit, contiguous bytes in the ``.tflite`` file, so the zeros
  come in runs gzip can shorten (a weight-by-weight mask costs gzip about a bit per zero). Fine-tuning
  uses the run's optimizer from ``prune_learning_rate`` (default :data:`PRUNE_LEARNING_RATE_FACTOR` times
  the run's) down a half cosine: the network has to move far to make up for half its weights. On the
  converged digits MLP the run's own constant rate left the 50% pruned int8 model 0.3-1.1 points below
  Keras over three seeds, a third of it 1.7-2.0, three times it with the cosine 0-0.3;
- **QAT** annotates every layer (a z-score layer still in the model gets an output-only config: tfmot has
  none for ``Normalization``; Dense kernels get one scale per output unit, as post-training int8 has), applies
  tfmot's default 8-bit scheme (its prune-preserving variant after pruning, so the zeros stay zeros), sets
  every activation range from the examples post-training int8 calibrates on, and fine-tunes ``qat_epochs``
  epochs at ``qat_learning_rate``, keeping the weights of the lowest dev loss, the calibrated start (epoch 0)
  included: QAT never ends worse on the dev split than the quantized model it started from.

tfmot is imported only inside this module's functions, through :mod:`edge.tfmot_patches`, which holds every change
this project makes to tfmot (its own quantize configs, the range calibration that swaps tfmot's private quantizer
ops) and its version check; importing tfmot sets ``TF_USE_LEGACY_KERAS=1`` in the process environment, which
:func:`edge.tfmot_patches.import_tfmot` puts back as it was, so no other command (and no child process) sees it.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from types import ModuleType
from typing import Any

import numpy as np

from edge.convert import calibration_samples, split_standardization
from edge.device.errors import UserError, first_line
from edge.device.preprocessing import Standardization
from edge.fusion import LINEAR_LAYERS, fuse_for_quantization
from edge.twin import ZSCORE_LAYER, build_twin, check_same_outputs
from edge.variants import DEFAULT_CALIBRATION_SAMPLES
from recipes.config import TrainConfig
from recipes.input_pipeline import PreparedData
from recipes.layers import DataSpec
from recipes.records import on_disk
from recipes.tasks import CLASSIFICATION
from recipes.training import DEV_NAMES, EVALUATION_BATCH, compile_model, fit_keras

DEFAULT_PRUNE_EPOCHS = 20
DEFAULT_PRUNE_BLOCK = 16
DEFAULT_QAT_EPOCHS = 3
DEFAULT_QAT_LEARNING_RATE = 1e-4
PRUNE_LEARNING_RATE_FACTOR = 3.0  # pruning starts at this multiple of the run's learning rate
PRUNING_UPDATES = 10  # mask updates over the pruning ramp
HISTORY_COLUMNS = (
    "stage",
    "epoch",
    "loss",
    "accuracy",
    "dev_loss",
    "dev_accuracy",
    "learning_rate",
    "sparsity",
    "seconds",
)


@dataclass(frozen=True)
class CompressionSettings:
    """What to compress and how long to fine-tune.

    Args:
        prune: target sparsity in [0, 1) (share of kernel weights set to zero), or None for no pruning.
        prune_epochs: fine-tuning epochs of pruning; the target is reached at the start of the last one.
        prune_block: Dense kernels are pruned in blocks of this many consecutive inputs of one unit
            (1: weight by weight).
        prune_learning_rate: first learning rate of pruning (it decays along a half cosine); None:
            :data:`PRUNE_LEARNING_RATE_FACTOR` times the run's learning rate.
        qat: whether to fine-tune with quantization-aware training.
        qat_epochs: fine-tuning epochs of QAT.
        qat_learning_rate: learning rate of QAT.
    """

    prune: float | None = None
    prune_epochs: int = DEFAULT_PRUNE_EPOCHS
    prune_block: int = DEFAULT_PRUNE_BLOCK
    prune_learning_rate: float | None = None
    qat: bool = False
    qat_epochs: int = DEFAULT_QAT_EPOCHS
    qat_learning_rate: float = DEFAULT_QAT_LEARNING_RATE

    @classmethod
    def from_options(
        cls,
        prune: float | None = None,
        prune_epochs: int | None = None,
        prune_block: int | None = None,
        prune_learning_rate: float | None = None,
        qat: bool = False,
        qat_epochs: int | None = None,
        qat_learning_rate: float | None = None,
    ) -> CompressionSettings:
        """Settings from command-line options (None: not given), checked.

        Raises:
            UserError: a value out of range, or a pruning/QAT option without ``--prune``/``--qat``.
        """
        for value, option, flag in (
            (prune_epochs, "--prune-epochs", "--prune 0.5"),
            (prune_block, "--prune-block", "--prune 0.5"),
            (prune_learning_rate, "--prune-learning-rate", "--prune 0.5"),
            (qat_epochs, "--qat-epochs", "--qat"),
            (qat_learning_rate, "--qat-learning-rate", "--qat"),
        ):
            enabled = prune is not None if flag.startswith("--prune") else qat
            if value is not None and not enabled:
                raise UserError(f"{option} applies only with {flag.split()[0]}; add e.g. {flag} or drop {option}")
        given = {
            "prune_epochs": prune_epochs,
            "prune_block": prune_block,
            "qat_epochs": qat_epochs,
            "qat_learning_rate": qat_learning_rate,
        }
        settings = cls(
            prune=prune,
            prune_learning_rate=prune_learning_rate,
            qat=qat,
            **{key: value for key, value in given.items() if value is not None},
        )
        settings.check()
        return settings

    @property
    def active(self) -> bool:
        """Whether anything is to be compressed."""
        return self.prune is not None or self.qat

    @property
    def variant_name(self) -> str:
        """The exported variant: ``int8_pruned``, ``int8_qat`` or ``int8_pruned_qat``."""
        return "int8" + ("_pruned" if self.prune is not None else "") + ("_qat" if self.qat else "")

    def check(self) -> None:
        """Refuse impossible settings.

        Raises:
            UserError: sparsity outside [0, 1), epochs or block below 1, a learning rate that is not > 0.
        """
        if self.prune is not None and not 0.0 <= self.prune < 1.0:
            raise UserError(
                f"--prune {self.prune:g} is not a sparsity in [0, 1); give the share of weights to set "
                "to zero, e.g. --prune 0.5"
            )
        for value, option in (
            (self.prune_epochs, "--prune-epochs"),
            (self.prune_block, "--prune-block"),
            (self.qat_epochs, "--qat-epochs"),
        ):
            if value < 1:
                raise UserError(f"{option} must be at least 1, got {value}; e.g. {option} 3")
        for rate, option in (
            (self.prune_learning_rate, "--prune-learning-rate"),
            (self.qat_learning_rate, "--qat-learning-rate"),
        ):
            if rate is not None and not (math.isfinite(rate) and rate > 0):
                raise UserError(f"{option} must be > 0, got {rate:g}; e.g. {option} {DEFAULT_QAT_LEARNING_RATE:g}")

    def first_prune_learning_rate(self, run_learning_rate: float) -> float:
        """The learning rate pruning starts from: ``prune_learning_rate``, else a multiple of the run's."""
        return self.prune_learning_rate or PRUNE_LEARNING_RATE_FACTOR * run_learning_rate

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json``."""
        return asdict(self)


@dataclass
class CompressedModel:
    """A fine-tuned tf_keras model ready for :func:`edge.convert.convert_model`, and how it was made.

    Args:
        model: the stripped pruned model, or the QAT model.
        history: one row per fine-tuning epoch with the keys of :data:`HISTORY_COLUMNS`.
        twin_difference: largest output difference of the tf_keras twin from the Keras 3 model.
        fusion_difference: largest output difference of the fused twin from the twin.
        folded_batch_norms: BatchNorm layers folded into their kernel.
        fused_relus: ReLU layers moved into their linear layer.
        pruned_layers: layers whose kernels were pruned.
        qat_kept_epoch: the QAT epoch whose weights were kept (lowest dev loss; 0: the calibrated start),
            None without QAT.
        standardization: the z-score split off before fine-tuning (``model`` takes z-scores), or None when
            the model kept its own.
    """

    model: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    twin_difference: float = 0.0
    fusion_difference: float = 0.0
    folded_batch_norms: list[str] = field(default_factory=list)
    fused_relus: list[str] = field(default_factory=list)
    pruned_layers: list[str] = field(default_factory=list)
    qat_kept_epoch: int | None = None
    standardization: Standardization | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``report.json`` (without the model and the history)."""
        return {
            "twin_max_abs_diff": self.twin_difference,
            "fusion_max_abs_diff": self.fusion_difference,
            "folded_batch_norms": self.folded_batch_norms,
            "fused_relus": self.fused_relus,
            "pruned_layers": self.pruned_layers,
            "qat_kept_epoch": self.qat_kept_epoch,
        }


def pruning_steps(steps_per_epoch: int, epochs: int) -> tuple[int, int]:
    """When the pruning schedule reaches its target and how often it updates the masks.

    The target is reached at the start of the last epoch (in the middle of a single epoch), so the last
    epoch fine-tunes with the final mask; masks are updated :data:`PRUNING_UPDATES` times on the way.

    Returns:
        ``(end_step, frequency)``: ``end_step`` is a multiple of ``frequency`` (tfmot prunes at steps
        ``frequency, 2·frequency, ... ≤ end_step``), both at least 1.
    """
    ramp = max(1, (epochs - 1) * steps_per_epoch if epochs > 1 else steps_per_epoch // 2)
    frequency = max(1, ramp // PRUNING_UPDATES)
    return frequency * (ramp // frequency), frequency


def block_height(inputs: int, block: int) -> int:
    """Rows of a pruning block for a Dense kernel with ``inputs`` rows: ``block``, fewer for a short kernel.

    tfmot pools the kernel into blocks and needs at least two block rows, so the height stays below ``inputs``.
    """
    return max(1, min(block, inputs - 1))


def history_csv(rows: list[dict[str, Any]]) -> str:
    """Fine-tuning history as CSV text, one row per epoch, the columns of :data:`HISTORY_COLUMNS`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in HISTORY_COLUMNS})
    return buffer.getvalue()


def kernel_sparsity(layers: list[Any]) -> float:
    """Share of exactly-zero values in the kernels of ``layers`` (0 when there are none)."""
    kernels = [np.asarray(layer.weights[0]) for layer in layers if layer.weights]
    total = sum(kernel.size for kernel in kernels)
    return float(sum(np.count_nonzero(kernel == 0) for kernel in kernels) / total) if total else 0.0


def unquantizable_layers(model: Any, tfmot: ModuleType) -> list[str]:
    """Layers tfmot's default 8-bit QAT cannot quantize, each as ``'name' (Class detail)``.

    The input and the z-score layer are handled here (the latter with an output-only config); every other
    layer must be one tfmot's registry supports, and an ``Activation`` one whose function it can quantize.
    """
    registry = tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry()
    problems = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer" or layer.name == ZSCORE_LAYER or _quantizable(layer, registry):
            continue
        detail = f" {layer.get_config().get('activation')}" if kind == "Activation" else ""
        problems.append(f"'{layer.name}' ({kind}{detail})")
    return problems


def _quantizable(layer: Any, registry: Any) -> bool:
    """Whether tfmot's 8-bit registry has a quantize config for ``layer`` that accepts it."""
    if not registry.supports(layer):
        return False
    try:
        registry.get_quantize_config(layer).get_output_quantizers(layer)
    except ValueError:  # an Activation whose function tfmot cannot quantize, e.g. elu
        return False
    return True


def compress_model(
    model: Any,
    config: TrainConfig,
    data: PreparedData,
    settings: CompressionSettings,
    progress: Callable[[str], None] | None = None,
) -> CompressedModel:
    """Prune and/or quantization-aware train a run's model on its tf_keras twin.

    Every check (settings, task, twin and fusion equality, QAT support) runs before any fine-tuning and
    before anything is reported, so a refused model costs seconds and prints one line.

    Args:
        model: the run's Keras 3 model.
        config: the run's resolved config (optimizer, learning rate, batch size, seed, augmentation).
        data: the run's data and split; ``data.spec`` holds the z-score statistics of the model.
        settings: what to do (see :class:`CompressionSettings`).
        progress: called with one line before fine-tuning and one per fine-tuning epoch; None for silence.

    Returns:
        The compressed tf_keras model with its history and the checks' figures.

    Raises:
        UserError: impossible settings, a run that is not a classifier, or a layer QAT cannot quantize.
    """
    settings.check()
    if data.task.name != CLASSIFICATION:
        raise UserError(
            f"--prune and --qat fine-tune classifiers; this run is {data.task.noun} "
            f"({config.recipe}): export it without --prune and --qat"
        )
    if on_disk(data.dataset.x):
        raise UserError(
            f"--prune and --qat fine-tune on data held in memory, and this run's features "
            f"({data.dataset.x.nbytes / 2**30:.1f} GiB) are read from the cache on disk: export without --prune and "
            "--qat, or train with --set in_memory_mb=N above that size if the machine has the memory"
        )
    from recipes.backend import import_keras

    import_keras(config.seed)
    import tf_keras

    from edge.tfmot_patches import tfmot

    tf_keras.utils.set_random_seed(config.seed)
    x_check = data.validation()[0]
    twin, twin_difference = build_twin(model, config, data.spec, x_check)
    fused = fuse_for_quantization(twin)
    result = CompressedModel(
        fused.model,
        [],
        twin_difference,
        check_same_outputs(twin, fused.model, x_check, "the fused tf_keras twin"),
        fused.folded_batch_norms,
        fused.fused_relus,
    )
    if settings.qat:
        problems = unquantizable_layers(result.model, tfmot)
        if problems:
            more = f" (nor of {len(problems) - 1} more layers)" if len(problems) > 1 else ""
            retrain = ", or train with --set activation=relu" if "(Activation " in problems[0] else ""
            raise UserError(
                f"QAT cannot quantize layer {problems[0]}: tfmot's 8-bit scheme has no quantized form "
                f"of it{more}; export without --qat{retrain}"
            )
    split = split_standardization(result.model)
    if split is not None:
        result.model, result.standardization = split[:2]
        data = standardized_data(data, result.standardization)
    say = progress or (lambda line: None)
    say(_plan_line(result, settings, settings.first_prune_learning_rate(config.learning_rate)))
    if settings.prune is not None:
        result.model, result.pruned_layers = _prune(result.model, config, data, settings, tfmot, result.history, say)
    if settings.qat:
        result.model, result.qat_kept_epoch = _quantization_aware(
            result.model, config, data, settings, tfmot, result.history, say
        )
    return result


def standardized_data(data: PreparedData, statistics: Standardization) -> PreparedData:
    """The run's data z-scored with ``statistics`` (what a model split from its z-score layer takes): same split,
    a spec of mean 0 and variance 1, so noise augmentation stays in z-score units."""
    dataset = data.dataset
    channels = statistics.channels
    spec = DataSpec(
        data.spec.input_shape,
        data.spec.num_classes,
        np.zeros(channels, np.float32),
        np.ones(channels, np.float32),
        data.spec.num_train_examples,
    )
    return replace(data, dataset=replace(dataset, x=statistics.apply(dataset.x)), spec=spec)


def _plan_line(result: CompressedModel, settings: CompressionSettings, first_rate: float) -> str:
    """One line: the twin checks and the fine-tuning to come."""
    steps = []
    if settings.prune is not None:
        steps.append(
            f"pruning to {settings.prune:.0%} sparsity over {settings.prune_epochs} epochs "
            f"(Dense blocks of {settings.prune_block}; learning rate {first_rate:g} down a half cosine)"
        )
    if settings.qat:
        steps.append(f"QAT {settings.qat_epochs} epochs at learning rate {settings.qat_learning_rate:g}")
    return (
        f"tf_keras twin equals the Keras model (max diff {result.twin_difference:.1e}); folded "
        f"{len(result.folded_batch_norms)} BatchNorm, fused {len(result.fused_relus)} ReLU; " + ", then ".join(steps)
    )


def _fit(
    model: Any,
    config: TrainConfig,
    data: PreparedData,
    epochs: int,
    stage: str,
    rate: Callable[[int], float],
    callbacks: list[Any],
    rows: list[dict[str, Any]],
    say: Callable[[str], None],
    sparsity: Callable[[], float] | None = None,
    keep_best: bool = False,
) -> int:
    """Compile and fine-tune a tf_keras model on the run's data at ``rate(epoch)`` (0-based), one progress
    line and history row per epoch, through the training's own ``compile_model`` and ``fit_keras`` (the
    project's one ``model.fit`` call: the run's pipeline, batch size and augmentation), without early stopping.

    With ``keep_best`` the model is also scored on the dev split before the first epoch (a history row of
    epoch 0) and ends with the weights of the lowest dev loss among the start and every epoch, as the run's
    own early stopping does; fine-tuning that only makes the dev loss worse is thrown away.

    Returns:
        The epoch whose weights the model ends with (0: the start; ``epochs`` without ``keep_best``).
    """
    import tf_keras

    width = len(str(epochs))

    def show(row: dict[str, Any], note: str = "") -> None:
        rows.append(row)
        values = "  ".join(
            f"{label} {row[key]:.4f}"
            for label, key in (
                ("loss", "loss"),
                ("acc", "accuracy"),
                ("dev loss", "dev_loss"),
                ("dev acc", "dev_accuracy"),
            )
            if key in row
        )
        shown = f"  sparsity {row['sparsity']:.1%}" if row.get("sparsity") is not None else ""
        timing = f"  {row['seconds']:.2f}s" if "seconds" in row else ""
        say(f"{stage} {row['epoch']:>{width}}/{epochs}  {values}{shown}{timing}{note}")

    class Progress(tf_keras.callbacks.Callback):
        best = (math.inf, epochs, None)  # dev loss, epoch, weights

        def on_train_begin(self, logs: dict | None = None) -> None:
            if keep_best:
                x_dev, y_dev = data.validation()
                scores = self.model.evaluate(x_dev, y_dev, batch_size=EVALUATION_BATCH, verbose=0, return_dict=True)
                self.best = (scores["loss"], 0, self.model.get_weights())
                show(
                    {
                        "stage": stage,
                        "epoch": 0,
                        "dev_loss": float(scores["loss"]),
                        "dev_accuracy": float(scores["accuracy"]),
                    },
                    "  (start)",
                )

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            show(
                {
                    "stage": stage,
                    "epoch": epoch + 1,
                    "learning_rate": rate(epoch),
                    "sparsity": sparsity() if sparsity else None,
                    "seconds": round(time.perf_counter() - self.started, 3),
                    **{
                        new: float(logs[old])
                        for old, new in DEV_NAMES.items()
                        if old in (logs or {}) and old != "learning_rate"
                    },
                }
            )
            if keep_best and logs["val_loss"] < self.best[0]:
                self.best = (logs["val_loss"], epoch + 1, self.model.get_weights())

    progress = Progress()
    compile_model(model, replace(config, learning_rate=rate(0)), data.task, keras_module=tf_keras)
    fit_keras(
        model,
        config,
        data,
        epochs=epochs,
        callbacks=[*callbacks, progress],
        keras_module=tf_keras,
        learning_rate=rate,
        early_stopping=False,  # a fixed number of epochs; keep_best above decides which weights stay
    )
    dev_loss, kept, weights = progress.best
    if keep_best:
        model.set_weights(weights)
        say(f"{stage}: kept {'the start' if kept == 0 else f'epoch {kept}'}, the lowest dev loss ({dev_loss:.4f})")
    return kept


def _prune(
    model: Any,
    config: TrainConfig,
    data: PreparedData,
    settings: CompressionSettings,
    tfmot: ModuleType,
    rows: list[dict[str, Any]],
    say: Callable[[str], None],
) -> tuple[Any, list[str]]:
    """Magnitude-prune every linear layer to ``settings.prune`` while fine-tuning; return the stripped model."""
    import tf_keras

    from recipes.input_pipeline import batch_size_for

    sparsity = tfmot.sparsity.keras
    train_examples = len(data.split.train)
    steps_per_epoch = math.ceil(train_examples / batch_size_for(config, train_examples))
    end_step, frequency = pruning_steps(steps_per_epoch, settings.prune_epochs)

    wrappers: list[Any] = []

    def wrap(layer: Any) -> Any:
        if type(layer).__name__ not in LINEAR_LAYERS:
            return layer
        schedule = sparsity.PolynomialDecay(0.0, settings.prune, 0, end_step, frequency=frequency)
        height = block_height(layer.kernel.shape[0], settings.prune_block) if type(layer).__name__ == "Dense" else 1
        wrappers.append(sparsity.prune_low_magnitude(layer, pruning_schedule=schedule, block_size=(height, 1)))
        return wrappers[-1]

    pruned = tf_keras.models.clone_model(model, clone_function=wrap)  # wraps the model's own layers and weights
    first = settings.first_prune_learning_rate(config.learning_rate)
    _fit(
        pruned,
        config,
        data,
        settings.prune_epochs,
        "prune",
        lambda epoch: first * 0.5 * (1 + math.cos(math.pi * epoch / settings.prune_epochs)),
        [sparsity.UpdatePruningStep()],
        rows,
        say,
        lambda: kernel_sparsity([wrapper.layer for wrapper in wrappers]),
    )
    return sparsity.strip_pruning(pruned), [wrapper.layer.name for wrapper in wrappers]


def _quantization_aware(
    model: Any,
    config: TrainConfig,
    data: PreparedData,
    settings: CompressionSettings,
    tfmot: ModuleType,
    rows: list[dict[str, Any]],
    say: Callable[[str], None],
) -> tuple[Any, int]:
    """Quantization-aware fine-tuning (sparsity-preserving after pruning) from the post-training ranges.

    Returns:
        The QAT model with the weights of the lowest dev loss, and that epoch (0: the calibrated start).
    """
    import tf_keras

    quantization = tfmot.quantization.keras
    from edge import tfmot_patches

    output_config = tfmot_patches.ZscoreOutputQuantizeConfig
    dense_config = tfmot_patches.PerChannelDenseQuantizeConfig
    pruned = settings.prune is not None

    def annotate(layer: Any) -> Any:
        if type(layer).__name__ == "InputLayer":
            return layer
        if layer.name == ZSCORE_LAYER:
            return quantization.quantize_annotate_layer(layer, output_config())
        if type(layer).__name__ == "Dense":
            return quantization.quantize_annotate_layer(layer, dense_config(preserve_zeros=pruned))
        return quantization.quantize_annotate_layer(layer)

    annotated = tf_keras.models.clone_model(model, clone_function=annotate)  # wraps the model's own layers
    scheme = (
        quantization.collab_opts.Default8BitPrunePreserveQuantizeScheme()
        if pruned
        else quantization.default_8bit.Default8BitQuantizeScheme()
    )
    try:
        with quantization.quantize_scope({output_config.__name__: output_config, dense_config.__name__: dense_config}):
            quantized = quantization.quantize_apply(annotated, scheme)
    except (ValueError, RuntimeError) as error:  # a layer setting unquantizable_layers cannot see
        reason = first_line(error)
        raise UserError(f"QAT cannot quantize this model ({reason}); export without --qat") from None
    # Start from the ranges post-training int8 would use: the same seeded draw of training examples.
    x_train, y_train = data.part("train")
    calibration = calibration_samples(x_train, DEFAULT_CALIBRATION_SAMPLES, config.seed, y_train)
    tfmot_patches.calibrate_activation_ranges(quantized, calibration)
    kept = _fit(
        quantized,
        config,
        data,
        settings.qat_epochs,
        "qat",
        lambda epoch: settings.qat_learning_rate,
        [],
        rows,
        say,
        keep_best=True,
    )
    # The input's range took in every training batch, augmented ones too; the device feeds clean examples.
    tfmot_patches.calibrate_activation_ranges(quantized, calibration, kinds=("AllValuesQuantize",))
    return quantized, kept
