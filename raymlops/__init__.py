"""raymlops: train, register, serve, monitor and roll out models on Ray.

The public API is what ``__all__`` lists: the whole error tree and ``load_config``.
Importing this package does no work: no Ray connection, no logging handlers, no metrics.
"""

from raymlops.config import load_config
from raymlops.errors import (
    AliasConflictError,
    ArtifactIntegrityError,
    AuthenticationError,
    ClusterError,
    ConfigError,
    DataError,
    InvalidNameError,
    InvalidRequestError,
    JobError,
    LimitExceededError,
    NotAvailableError,
    NotFoundError,
    PermissionDeniedError,
    RaymlopsError,
    RegistryError,
    RolloutError,
    SchemaVersionError,
    StorageError,
)

__version__ = "0.1.0"

__all__ = [
    "AliasConflictError",
    "ArtifactIntegrityError",
    "AuthenticationError",
    "ClusterError",
    "ConfigError",
    "DataError",
    "InvalidNameError",
    "InvalidRequestError",
    "JobError",
    "LimitExceededError",
    "NotAvailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "RaymlopsError",
    "RegistryError",
    "RolloutError",
    "SchemaVersionError",
    "StorageError",
    "__version__",
    "load_config",
]
