"""The schema of a prepared data set: features, their kinds and dtypes, the label, and the task
(classification with its classes, or regression of a numeric label).

It is written as ``schema.json`` next to the parquet splits, read by training, saved
with every model version as its input signature, and used by the router to validate
requests.
"""

from __future__ import annotations

import json
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from raymlops import filesystem
from raymlops.errors import DataError


class FeatureSpec(BaseModel):
    """One input feature."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Column name.")
    kind: Literal["numeric", "categorical"] = Field(description="How the feature is encoded.")
    dtype: str = Field(description="Arrow type name of the column, e.g. double or string.")
    categories: tuple[str, ...] | None = Field(
        None, description="Known categories of a categorical feature, sorted."
    )


class TensorSpec(BaseModel):
    """One named tensor input (an image, a sequence): its element type and its shape per row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Input name, e.g. image.")
    datatype: Literal["FP32", "FP64", "INT32", "INT64"] = Field("FP32", description="v2 element type.")
    shape: tuple[int, ...] = Field(description="Shape of one row's tensor, e.g. [1, 8, 8].")


Task = Literal["classification", "regression"]


class DatasetSchema(BaseModel):
    """Features and label of a tabular data set: a classification (with its classes) or a regression."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Data set name, e.g. penguins.")
    task: Task = Field("classification", description="Learning task: `classification` or `regression`.")
    label: str = Field(description="Label column (the class, or the numeric target).")
    classes: tuple[str, ...] = Field((), description="Class names; a classifier predicts one of them (empty "
                                     "for a regression).")
    features: tuple[FeatureSpec, ...] = Field((), description="Tabular input features in model order.")
    tensors: tuple[TensorSpec, ...] = Field((), description="Tensor inputs (instead of features), e.g. an image.")
    watched: tuple[FeatureSpec, ...] = Field(
        (), description="What the drift monitor watches when it is not the features: the numeric columns of an "
        "embedding the model computes (tensor inputs).")

    @model_validator(mode="after")
    def _classes_fit_the_task(self) -> DatasetSchema:
        if bool(self.features) == bool(self.tensors):
            raise ValueError("give either tabular features or tensor inputs")
        if self.task == "classification" and len(self.classes) < 2:
            raise ValueError("a classification needs at least two classes")
        if self.task == "regression" and self.classes:
            raise ValueError("a regression has no classes")
        return self

    @property
    def is_classification(self) -> bool:
        """True for a classification, False for a regression."""
        return self.task == "classification"

    @property
    def feature_names(self) -> list[str]:
        """Names of all tabular features in model order."""
        return [feature.name for feature in self.features]

    @property
    def input_names(self) -> list[str]:
        """Names of the inputs a request carries: the features, or the tensors."""
        return self.feature_names or [tensor.name for tensor in self.tensors]

    @property
    def watched_features(self) -> tuple[FeatureSpec, ...]:
        """The columns the drift monitor tests: the embedding when given, else the features."""
        return self.watched or self.features

    @property
    def numeric(self) -> list[str]:
        """Names of the numeric features."""
        return [f.name for f in self.features if f.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        """Names of the categorical features."""
        return [f.name for f in self.features if f.kind == "categorical"]

    def to_json(self) -> str:
        """Serialize to indented JSON."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "<schema>") -> DatasetSchema:
        """Parse JSON written by :meth:`to_json`.

        Raises:
            DataError: when the text is not a valid schema.
        """
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise DataError(path=source, problem=f"invalid schema: {where}: {first['msg']}") from None

    def check_table(self, table: pa.Table, path: str, require_label: bool = True) -> None:
        """Check that ``table`` has every feature (and the label) with a compatible type.

        Raises:
            DataError: naming the first missing column or wrong type.
        """
        self.check_columns(table.schema, path, require_label)

    def check_columns(self, arrow_schema: pa.Schema, path: str, require_label: bool = True) -> None:
        """Like :meth:`check_table` for an Arrow schema (e.g. a parquet footer, without reading rows)."""
        columns = set(arrow_schema.names)
        wanted = self.input_names + ([self.label] if require_label else [])
        missing = [name for name in wanted if name not in columns]
        if missing:
            raise DataError(path=path, problem=f"missing column(s) {', '.join(missing)} required by the schema")
        numeric = [f.name for f in self.features if f.kind == "numeric"]
        if require_label and self.task == "regression":
            numeric.append(self.label)
        for name in numeric:
            arrow_type = arrow_schema.field(name).type
            if not (pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)):
                raise DataError(path=path, problem=f"column {name} must be numeric, found {arrow_type}")


def schema_uri(directory: str) -> str:
    """Where the schema of a prepared data set directory lives."""
    return filesystem.join(directory, "schema.json")


def read_schema(directory: str) -> DatasetSchema:
    """Read ``schema.json`` of a prepared data set directory.

    Raises:
        DataError: when it is missing or invalid.
    """
    uri = schema_uri(directory)
    if not filesystem.exists(uri):
        raise DataError(path=uri, problem="no schema.json here; run `raymlops data prepare` first")
    return DatasetSchema.from_json(filesystem.read_bytes(uri).decode(), source=uri)


def write_schema(directory: str, schema: DatasetSchema) -> str:
    """Write ``schema.json`` into a data set directory and return its URI."""
    uri = schema_uri(directory)
    filesystem.write_bytes(uri, schema.to_json().encode())
    return uri
