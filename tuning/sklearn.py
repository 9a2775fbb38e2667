"""A recipe as a scikit-learn classifier or regressor, for ``GridSearchCV``, ``RandomizedSearchCV`` and
``cross_val_score``.

:class:`RecipeClassifier` and :class:`RecipeRegressor` follow scikit-learn's estimator API (not SciKeras, which
no longer works with scikit-learn >= 1.6): constructor arguments are stored unchanged and checked in ``fit``,
learned attributes end in ``_``, ``fit`` returns ``self``. ``fit`` trains the recipe's own model
(``build_model`` + ``compile_model``, the task's output layer and loss) with the recipe's pipeline, schedule and
early stopping (``recipes.training.fit_keras``); the z-score statistics of the inputs (and of a regression's
targets) come from the rows ``fit`` trains on, as in ``train``.

Example::

    from scipy.stats import loguniform
    from sklearn.model_selection import RandomizedSearchCV
    search = RandomizedSearchCV(RecipeClassifier(epochs=30), {"learning_rate": loguniform(1e-4, 1e-1)}, n_iter=8)
    search.fit(x, y)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from recipes.backend import quiet_retracing
from recipes.config import TrainConfig, apply_overrides, validate
from recipes.dataset import Dataset
from recipes.input_pipeline import PreparedData, data_spec
from recipes.models import build_model
from recipes.registry import recipe_named
from recipes.splitting import Split
from recipes.tasks import CLASSIFICATION, REGRESSION, Task, task_named
from recipes.training import EVALUATION_BATCH, compile_model, fit_keras


class _RecipeEstimator(BaseEstimator):
    """A recipe's Keras model as a scikit-learn estimator: the parameters and the fit shared by both kinds.

    Args:
        recipe: the architecture, e.g. ``"mlp"`` or ``"cnn"``.
        hidden_units: units of each dense hidden layer.
        activation: hidden activation.
        dropout: inverted-dropout drop probability.
        l2: L2 lambda (the cost gains lambda/(2m)·Σ‖W‖²).
        batch_norm: BatchNorm between each linear layer and its activation.
        optimizer: ``"sgd"``, ``"momentum"``, ``"rmsprop"`` or ``"adam"``.
        learning_rate: the initial learning rate alpha0 (search it on a log scale).
        momentum: beta of the momentum optimizer.
        batch_size: examples per step (a power of two), or ``"full"``.
        epochs: most passes over the training rows.
        schedule: learning-rate schedule, e.g. ``"constant"`` or ``"inverse_time"``.
        early_stopping: hold out ``validation_fraction`` of the rows and stop when their loss stops
            falling (restoring the best weights).
        validation_fraction: share of rows held out for early stopping.
        patience: early stopping's epochs without improvement.
        input_shape: shape of one example when rows are flattened images, e.g. ``(8, 8, 1)`` for
            the cnn on digits. Defaults to None (each row is one feature vector).
        config: any other :class:`~recipes.config.TrainConfig` keys, e.g. ``{"conv_filters": [16]}``.
        random_state: seed of the weights, the shuffles and the hold-out split.
    """

    def __init__(
        self,
        recipe: str = "mlp",
        hidden_units: tuple[int, ...] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
        l2: float = 0.0,
        batch_norm: bool = False,
        optimizer: str = "adam",
        learning_rate: float = 0.001,
        momentum: float = 0.9,
        batch_size: int | str = 32,
        epochs: int = 30,
        schedule: str = "constant",
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 5,
        input_shape: tuple[int, ...] | None = None,
        config: dict[str, Any] | None = None,
        random_state: int = 0,
    ) -> None:
        self.recipe = recipe
        self.hidden_units = hidden_units
        self.activation = activation
        self.dropout = dropout
        self.l2 = l2
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.schedule = schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.input_shape = input_shape
        self.config = config
        self.random_state = random_state

    task = CLASSIFICATION  # what the subclass learns (recipes.tasks)
    kind = "classifier"

    def train_config(self) -> TrainConfig:
        """The recipe config of the current parameters (validated).

        Raises:
            ValueError: a parameter the recipe rejects (a :class:`~edge.device.errors.UserError`), or a
                recipe that cannot learn this estimator's task.
        """
        values = {
            "recipe": self.recipe,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "dropout": self.dropout,
            "l2": self.l2,
            "batch_norm": self.batch_norm,
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "schedule": self.schedule,
            "early_stopping": self.early_stopping,
            "patience": self.patience,
            "seed": self.random_state,
        }
        values.update(self.config or {})
        config = validate(apply_overrides(TrainConfig(), {**values, "task": self.task}))
        if self.task not in recipe_named(config.recipe).tasks:
            raise ValueError(
                f"the {config.recipe} recipe is not a {self.kind}; {type(self).__name__} needs one, e.g. mlp"
            )
        return config

    def _shaped(self, x: np.ndarray) -> np.ndarray:
        """Rows reshaped to ``input_shape`` (when given)."""
        if self.input_shape is None:
            return x
        shape = tuple(int(side) for side in self.input_shape)
        if int(np.prod(shape)) != x.shape[1]:
            raise ValueError(f"input_shape {shape} holds {int(np.prod(shape))} values but X has {x.shape[1]} features")
        return x.reshape((len(x), *shape))

    def _split(self, strata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Training and hold-out row indices (no hold-out without early stopping), stratified by ``strata``
        (classes, or deciles of a target) where every stratum can give one row."""
        indices = np.arange(len(strata))
        if not self.early_stopping:
            return indices, indices[:0]
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        held_out = max(1, round(self.validation_fraction * len(strata)))
        counts = np.unique(strata, return_counts=True)[1]
        stratify = strata if counts.min() >= 2 and held_out >= len(counts) else None
        train, dev = train_test_split(
            indices, test_size=held_out, stratify=stratify, random_state=self.random_state, shuffle=True
        )
        return np.sort(train), np.sort(dev)

    def _fit(self, x: np.ndarray, dataset: Dataset) -> None:
        """Train the recipe's model on ``dataset`` (its ``y`` as the task learns it), holding out rows for early
        stopping; sets ``model_`` and ``history_``."""
        config = self.train_config()
        task: Task = task_named(self.task)
        train, dev = self._split(task.strata(dataset.y))
        split = Split(train=train, dev=dev, test=train[:0], stratified=False)
        spec = data_spec(dataset, split, task)
        from recipes.backend import import_keras

        import_keras(config.seed)
        quiet_retracing()
        model = compile_model(build_model(config, spec), config, task)
        self.history_ = fit_keras(model, config, PreparedData(dataset, split, spec, task))
        self.model_ = model

    def _outputs(self, X: Any) -> np.ndarray:
        """The model's outputs for ``X`` as float64."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return np.asarray(self.model_.predict(self._shaped(X), batch_size=EVALUATION_BATCH, verbose=0), np.float64)


class RecipeClassifier(ClassifierMixin, _RecipeEstimator):
    """A recipe's Keras model as a scikit-learn classifier (parameters: see :class:`_RecipeEstimator`)."""

    task = CLASSIFICATION

    def fit(self, X: Any, y: Any) -> RecipeClassifier:
        """Train the recipe's model on ``X``, ``y``.

        Args:
            X: features, shape ``(n_samples, n_features)``.
            y: class labels, shape ``(n_samples,)``.

        Returns:
            self.
        """
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"RecipeClassifier needs samples of at least 2 classes; got 1 class ({self.classes_[0]!r})"
            )
        x = self._shaped(X)
        dataset = Dataset(
            x=x,
            y=labels.astype(np.int32),
            class_names=[str(name) for name in self.classes_],
            kind="image" if x.ndim == 4 else "tabular",
            name="sklearn",
        )
        self._fit(x, dataset)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in the order of ``classes_``."""
        return self._outputs(X)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class RecipeRegressor(RegressorMixin, _RecipeEstimator):
    """A recipe's Keras model as a scikit-learn regressor (parameters: see :class:`_RecipeEstimator`): targets
    z-scored from the training rows for training and mapped back inside the model; one target, or several
    (``y`` of shape ``(n_samples, n_outputs)``)."""

    task = REGRESSION
    kind = "regressor"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X: Any, y: Any) -> RecipeRegressor:
        """Train the recipe's model on ``X``, ``y``.

        Args:
            X: features, shape ``(n_samples, n_features)``.
            y: targets, shape ``(n_samples,)`` or ``(n_samples, n_outputs)``.

        Returns:
            self.
        """
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True, multi_output=True)
        targets = np.asarray(y, np.float64)
        self.y_ndim_ = targets.ndim
        targets = targets.reshape(len(targets), -1)
        x = self._shaped(X)
        dataset = Dataset(
            x=x,
            y=targets.astype(np.float32),
            class_names=[],
            kind="image" if x.ndim == 4 else "tabular",
            name="sklearn",
            targets=targets,
            target_names=[f"y{column}" for column in range(targets.shape[1])],
        )
        self._fit(x, dataset)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The predicted targets: shape ``(n_samples,)`` for a single target, else ``(n_samples, n_outputs)``."""
        values = self._outputs(X)
        return values[:, 0] if self.y_ndim_ == 1 else values
