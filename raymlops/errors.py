"""The one exception tree of raymlops.

Every error builds its own message from keyword fields, keeps those fields as
attributes for callers that want structure, and survives pickling across Ray
processes (the fields travel, the message is rebuilt on the other side)::

    RaymlopsError
    ├── ConfigError            a YAML file or override that does not validate
    ├── DataError              a data set that is missing, unreadable or of the wrong shape
    ├── StorageError           a filesystem URI that cannot be resolved or reached
    ├── ClusterError           the local Ray cluster cannot be started, reached or stopped
    ├── JobError               a Ray job could not be submitted or did not succeed
    ├── NotAvailableError      a feature or optional dependency that is not installed here
    ├── InvalidNameError       a model or alias name outside ^[a-z0-9][a-z0-9_-]{0,63}$
    ├── InvalidRequestError    a prediction request that does not match the model's signature
    │   └── LimitExceededError     a request over a size limit (body bytes, rows, items)
    ├── AuthenticationError    a request without usable credentials (401 at the HTTP edge)
    ├── PermissionDeniedError  credentials that are not allowed to do this (403 at the HTTP edge)
    ├── RolloutError           a rollout command that conflicts with the rollout's state
    └── RegistryError          the model registry refused or failed an operation
        ├── NotFoundError          no such model, version or alias
        ├── AliasConflictError     compare-and-set on an alias lost: it moved meanwhile
        ├── ArtifactIntegrityError an artifact file is missing or its checksum differs
        └── SchemaVersionError     the database was written by a newer raymlops

HTTP status codes are chosen only at the HTTP edge, never here.
"""

from __future__ import annotations

from typing import Any, ClassVar


def _rebuild(cls: type[RaymlopsError], fields: dict[str, Any]) -> RaymlopsError:
    return cls(**fields)


class RaymlopsError(Exception):
    """Base of every error raised on purpose by raymlops.

    Subclasses declare ``required`` field names and a ``template`` that formats them.
    Extra keyword fields are kept as attributes but not required by the template.
    """

    template: ClassVar[str] = "{message}"
    required: ClassVar[tuple[str, ...]] = ("message",)

    def __init__(self, **fields: Any) -> None:
        missing = [name for name in self.required if name not in fields]
        if missing:
            raise TypeError(f"{type(self).__name__} needs the fields {missing}")
        self.fields = dict(fields)
        for name, value in fields.items():
            setattr(self, name, value)
        super().__init__(self.render())

    def __getattr__(self, name: str) -> Any:
        """A field by name (fields are set as attributes too; this tells type checkers so)."""
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    def render(self) -> str:
        """Return the human message built from this error's fields."""
        return self.template.format(**self.fields)

    def __reduce__(self):  # noqa: D105 - pickling support, see module docstring
        return (_rebuild, (type(self), self.fields))

    def __str__(self) -> str:
        return self.render()


class ConfigError(RaymlopsError):
    """A configuration file or override that does not validate.

    Fields:
        file: the YAML file (or ``"<overrides>"``).
        problems: a list of ``(field_path, message)`` pairs; field_path may be ``""``.
    """

    required = ("file", "problems")

    def render(self) -> str:
        lines = [f"{self.file}: {path or '<root>'}: {message}" for path, message in self.problems]
        return "\n".join(lines) if lines else f"{self.file}: invalid configuration"


class DataError(RaymlopsError):
    """A data set that is missing, unreadable or does not match its schema."""

    template = "{path}: {problem}"
    required = ("path", "problem")


class StorageError(RaymlopsError):
    """A filesystem URI that cannot be resolved, reached, read or written."""

    template = "{uri}: {problem}"
    required = ("uri", "problem")


class ClusterError(RaymlopsError):
    """The local Ray cluster cannot be started, reached or stopped.

    Fields:
        problem: what went wrong.
        fix: what the user can do about it.
    """

    template = "{problem} ({fix})"
    required = ("problem", "fix")


class JobError(RaymlopsError):
    """A Ray job could not be submitted, or finished in a state other than SUCCEEDED."""

    template = "job {job_id}: {problem}"
    required = ("job_id", "problem")


class NotAvailableError(RaymlopsError):
    """A feature or optional dependency that is not available in this installation."""

    template = "{feature} is not available: {reason}"
    required = ("feature", "reason")


class InvalidNameError(RaymlopsError):
    """A model or alias name that is not 1-64 characters of a-z, 0-9, _ or - (starting alphanumeric)."""

    required = ("what", "value")

    def render(self) -> str:
        rule = self.fields.get("rule", "use 1-64 characters a-z, 0-9, _ or -, starting with a letter or digit")
        return f"invalid {self.what} {self.value!r}: {rule}"


class InvalidRequestError(RaymlopsError):
    """A prediction request that does not match the version's signature (a 4xx at the HTTP edge).

    Fields:
        field: the JSON path of the offending part, e.g. ``instances[3].bill_length_mm``.
        problem: what is wrong with it.
    """

    template = "{field}: {problem}"
    required: ClassVar[tuple[str, ...]] = ("field", "problem")


class LimitExceededError(InvalidRequestError):
    """A request over one of the server's size limits (a 413 at the HTTP edge).

    Fields:
        field: what is too large (``body``, ``instances``, ``feedback`` ...).
        size: how large it is.
        limit: the limit.
        unit: what is counted (``bytes``, ``rows``, ``items``).
    """

    required: ClassVar[tuple[str, ...]] = ("field", "size", "limit", "unit")

    def render(self) -> str:
        return f"{self.field}: {self.size} {self.unit} is more than the limit of {self.limit}"

    @property
    def problem(self) -> str:
        """The problem without the field, like every InvalidRequestError has."""
        return f"{self.size} {self.unit} is more than the limit of {self.limit}"


class EnvironmentMismatchError(RaymlopsError):
    """A version trained with other releases of the packages its flavor depends on than the
    serving process has (a 409 at the HTTP edge).

    Fields:
        model, version: the version refused.
        differences: ``package recorded (trained) vs here (here)``, joined.
    """

    template = ("{model}:{version} was trained with {differences}: refused (serve config `environment.on_mismatch: "
                "warn` serves it anyway; `environment.runtime_env: recorded` with `layout: separate` serves it in "
                "its recorded environment)")
    required = ("model", "version", "differences")


class RolloutError(RaymlopsError):
    """A rollout command that does not fit the rollout's state (a 409 at the HTTP edge).

    Fields:
        model: the model.
        problem: why the command does not apply now.
    """

    template = "rollout of {model}: {problem}"
    required = ("model", "problem")


class ModelOutputError(RaymlopsError):
    """A model version answered something it must not, e.g. NaN or infinity (a 500 at the HTTP edge,
    counted and recorded as an error; the replica lives on).

    Fields:
        version: the version that answered.
        problem: what is wrong with its answer.
    """

    template = "version {version}: {problem}"
    required = ("version", "problem")


class ConflictError(RaymlopsError):
    """A request that conflicts with what is already recorded, e.g. a second label for an answer
    (a 409 at the HTTP edge; nothing is changed).

    Fields:
        what: what the request is about (``feedback`` ...).
        problem: what it conflicts with.
    """

    template = "{what}: {problem}"
    required = ("what", "problem")


class AuthenticationError(RaymlopsError):
    """A request that carries no usable credentials.

    Fields:
        scheme: what the endpoint expects, e.g. ``Bearer`` or ``x-api-key``.
        problem: what is missing or malformed.
    """

    template = "{problem} (expected {scheme})"
    required = ("scheme", "problem")


class PermissionDeniedError(RaymlopsError):
    """Credentials that were read but are not allowed to do this.

    Fields:
        action: what was attempted, e.g. ``change traffic``.
        problem: why it is refused.
    """

    template = "may not {action}: {problem}"
    required = ("action", "problem")


class RegistryError(RaymlopsError):
    """The model registry refused or failed an operation."""


class NotFoundError(RegistryError):
    """No such model, version or alias."""

    template = "{what} not found: {name}"
    required = ("what", "name")


class AliasConflictError(RegistryError):
    """A compare-and-set on an alias found another version than expected."""

    template = "alias {model}@{alias} is at version {actual}, not {expected}; re-read it and decide again"
    required = ("model", "alias", "expected", "actual")


class ArtifactIntegrityError(RegistryError):
    """An artifact file is missing, unexpected, or does not match its recorded sha256."""

    template = "{uri}: {file}: {problem}"
    required = ("uri", "file", "problem")


class SchemaVersionError(RegistryError):
    """The registry database carries a schema newer than this raymlops understands."""

    template = "registry database {url} has schema version {found}; this raymlops reads up to {supported} (upgrade raymlops)"
    required = ("url", "found", "supported")


__all__ = [
    "AliasConflictError",
    "ArtifactIntegrityError",
    "ConflictError",
    "EnvironmentMismatchError",
    "InvalidNameError",
    "ModelOutputError",
    "InvalidRequestError",
    "LimitExceededError",
    "RolloutError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RegistryError",
    "SchemaVersionError",
    "ClusterError",
    "ConfigError",
    "DataError",
    "JobError",
    "NotAvailableError",
    "RaymlopsError",
    "StorageError",
]
