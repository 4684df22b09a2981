"""Models built from hparams and a dataset spec, looked up by name; the TF1 checkpoint importer."""

from models import baseline, capsule  # noqa: F401  (registers the models)
from models.registry import ComputeOptions, build_model
from models.tf1_import import import_tf1_checkpoint, is_tf1_checkpoint
