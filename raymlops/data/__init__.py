"""Data preparation to parquet, schema, and the synthetic drift generator."""

from raymlops.data.prepare import PreparedData, prepare_dataset
from raymlops.data.schema import DatasetSchema, FeatureSpec, read_schema
from raymlops.data.synth import synthesize
from raymlops.data.tables import read_table, split_uri

__all__ = [
    "DatasetSchema",
    "FeatureSpec",
    "PreparedData",
    "prepare_dataset",
    "read_schema",
    "read_table",
    "split_uri",
    "synthesize",
]
