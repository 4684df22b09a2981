"""Model registry: `--model=NAME` resolves to a builder registered under that name."""

from configs.registry import Registry
from input_data import zeros_batch

_MODELS = Registry('model')
register = _MODELS.register  # class or function decorator: `builder(hparams, spec)`
model_names = _MODELS.names


def build_model(name, hparams, spec):
  """Builds the model `name` for `spec`'s input and creates its variables."""
  model = _MODELS.get(name)(hparams, spec)
  model(zeros_batch(spec))
  return model
