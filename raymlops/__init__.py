"""raymlops: train, register, serve, monitor and roll out models on Ray.

Importing this package does no work: no Ray connection, no logging handlers, no metrics.
"""

from raymlops.config import load_config
from raymlops.errors import (
    ClusterError,
    ConfigError,
    DataError,
    JobError,
    NotAvailableError,
    RaymlopsError,
    StorageError,
)

__version__ = "0.1.0"

__all__ = [
    "ClusterError",
    "ConfigError",
    "DataError",
    "JobError",
    "NotAvailableError",
    "RaymlopsError",
    "StorageError",
    "__version__",
    "load_config",
]
