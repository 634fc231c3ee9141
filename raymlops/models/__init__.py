"""The model contract (:class:`Model`), its flavors, and the network builders.

``raymlops.models:mlp`` stays the import path of the built-in tabular network builder.
"""

from raymlops.models.builders import BUILDERS, build_model, mlp, resolve_builder, small_cnn
from raymlops.models.contract import Model, OutputSpec, Prediction
from raymlops.models.flavors import FLAVORS, flavor_class, load_model

__all__ = ["BUILDERS", "FLAVORS", "Model", "OutputSpec", "Prediction", "build_model", "flavor_class", "load_model",
           "mlp", "resolve_builder", "small_cnn"]
