"""raymlops: train, register, serve, monitor and roll out models on Ray.

The public API is what ``__all__`` lists: the whole error tree, ``load_config``, the model
contract (``Model``, ``Prediction``, ``OutputSpec``, ``load_model``) and ``register_model`` for
models trained elsewhere. Importing this package does no work: no Ray connection, no logging
handlers, no metrics.
"""

from typing import Any

from raymlops.config import load_config
from raymlops.errors import (
    AliasConflictError,
    ArtifactIntegrityError,
    AuthenticationError,
    ClusterError,
    ConfigError,
    ConflictError,
    DataError,
    EnvironmentMismatchError,
    InvalidNameError,
    InvalidRequestError,
    JobError,
    LimitExceededError,
    ModelOutputError,
    NotAvailableError,
    NotFoundError,
    PermissionDeniedError,
    RaymlopsError,
    RegistryError,
    RolloutError,
    SchemaVersionError,
    StorageError,
)
from raymlops.models.contract import Model, OutputSpec, Prediction
from raymlops.models.flavors import load_model

__version__ = "0.1.0"


def register_model(*args: Any, **kwargs: Any) -> Any:
    """Register a model trained elsewhere (a fitted scikit-learn-API estimator or a
    :class:`Model`); see :func:`raymlops.train.imports.register_model` for the arguments."""
    import importlib

    # imported by name when called: the package root is a facade over every room, and importing
    # the training room here would make each lower room that reads __version__ depend on it
    return importlib.import_module("raymlops.train.imports").register_model(*args, **kwargs)

__all__ = [
    "AliasConflictError",
    "ArtifactIntegrityError",
    "AuthenticationError",
    "ClusterError",
    "ConfigError",
    "ConflictError",
    "DataError",
    "EnvironmentMismatchError",
    "InvalidNameError",
    "InvalidRequestError",
    "JobError",
    "LimitExceededError",
    "Model",
    "ModelOutputError",
    "NotAvailableError",
    "NotFoundError",
    "OutputSpec",
    "PermissionDeniedError",
    "Prediction",
    "RaymlopsError",
    "RegistryError",
    "RolloutError",
    "SchemaVersionError",
    "StorageError",
    "__version__",
    "load_config",
    "load_model",
    "register_model",
]
