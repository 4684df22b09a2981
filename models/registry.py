"""Model registry: `--model=NAME` resolves to a builder registered under that name."""

from typing import Callable, Dict

from configs.errors import UserError
from input_data import zeros_batch

_MODELS: Dict[str, Callable] = {}


def register(name: str):
  """Class or function decorator: `builder(hparams, spec)` becomes available as `name`."""
  def wrap(builder):
    if name in _MODELS:
      raise ValueError(f'model {name!r} registered twice')
    _MODELS[name] = builder
    return builder
  return wrap


def model_names():
  return sorted(_MODELS)


def build_model(name, hparams, spec):
  """Builds the model `name` for `spec`'s input and creates its variables."""
  if name not in _MODELS:
    raise UserError(f'unknown model {name!r}; expected one of: {", ".join(model_names())}')
  model = _MODELS[name](hparams, spec)
  model(zeros_batch(spec))
  return model
