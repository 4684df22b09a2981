"""Loads checkpoints written by the original TF1 code into a `CapsuleModel` or `BaselineModel`.

The original saved name-based variables (`conv1/weights`, `conv_capsule1/biases`, ...) plus Adam
slots and `beta*_power`, which are ignored here. Its tensors were NCHW where ours are NHWC, so
three layouts differ and are converted on import:
  conv_capsule1/biases          stored [types, atoms, 1, 1]; ours [types, atoms]
  recons/recons_3 (last layer)  outputs pixels in (channel, row, col) order; ours (row, col,
                                channel): its columns are permuted (a no-op for one channel)
  fc1/weights (baseline)        rows follow the NCHW flatten (channel, row, col); ours NHWC
"""

import numpy as np
import tensorflow as tf

from configs.errors import UserError
from configs.hparams import format_overrides
from models.baseline import BaselineModel, conv_pool_size
from models.capsule import CapsuleModel


def is_tf1_checkpoint(path: str) -> bool:
  """True when `path` (a checkpoint prefix) holds the original code's name-based variables."""
  try:
    return 'conv1/weights' in tf.train.load_checkpoint(path).get_variable_to_shape_map()
  except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError):
    return False


def chw_to_hwc_columns(value: np.ndarray, height: int, width: int, depth: int) -> np.ndarray:
  """Reorders the last axis of `value` from (channel, row, col) to (row, col, channel)."""
  lead = value.shape[:-1]
  value = value.reshape(lead + (depth, height, width))
  return np.moveaxis(value, -3, -1).reshape(lead + (-1,))


def _capsule_map(model: CapsuleModel):
  """Original name -> (our variable, converter from the stored layout)."""
  spec = model.spec
  keep = lambda value: value  # noqa: E731
  mapping = {
      'conv1/weights': (model.conv1.kernel, keep), 'conv1/biases': (model.conv1.bias, keep),
      'conv_capsule1/weights': (model.primary.kernel, keep),
      'conv_capsule1/biases': (model.primary.bias, lambda v: v.reshape(v.shape[:2])),
      'capsule2/weights': (model.classes.kernel, keep),
      'capsule2/biases': (model.classes.bias, keep),
  }
  if model.decoder is not None:
    layers = model.decoder.hidden + [model.decoder.pixels]
    for i, layer in enumerate(layers):
      convert = keep
      if layer is model.decoder.pixels:
        convert = lambda v: chw_to_hwc_columns(v, spec.height, spec.width, spec.depth)  # noqa: E731
      mapping[f'recons/recons_{i + 1}/weights'] = (layer.kernel, convert)
      mapping[f'recons/recons_{i + 1}/biases'] = (layer.bias, convert)
  return mapping


def _baseline_map(model: BaselineModel):
  """Original name -> (our variable, converter): fc1's rows from NCHW to NHWC flatten order."""
  keep = lambda value: value  # noqa: E731
  height, width = (conv_pool_size(n, model.hparams.padding)
                   for n in (model.spec.height, model.spec.width))

  def fc1_rows_to_nhwc(value):
    return chw_to_hwc_columns(value.T, height, width, model.conv2.filters).T

  return {'conv1/weights': (model.conv1.kernel, keep), 'conv1/biases': (model.conv1.bias, keep),
          'conv2/weights': (model.conv2.kernel, keep), 'conv2/biases': (model.conv2.bias, keep),
          'fc1/weights': (model.fc1.kernel, fc1_rows_to_nhwc), 'fc1/biases': (model.fc1.bias, keep),
          'softmax_layer/weights': (model.logits_layer.kernel, keep),
          'softmax_layer/biases': (model.logits_layer.bias, keep)}


def original_variables(model) -> dict:
  """Original name -> our variable of a capsule or baseline model (layouts as the module
  docstring says): to compare with the original's recorded gradients."""
  mapping = _capsule_map(model) if isinstance(model, CapsuleModel) else _baseline_map(model)
  return {name: variable for name, (variable, _) in mapping.items()}


def _fitting_overrides(shapes, model):
  """The hparams overrides under which `model` would have the checkpoint's shapes."""
  hparams, fit = model.hparams, {}
  other_padding = 'SAME' if hparams.padding == 'VALID' else 'VALID'
  if isinstance(model, BaselineModel):
    if 'fc1/weights' in shapes and shapes['fc1/weights'][0] != model.fc1.kernel.shape[0]:
      fit['padding'] = other_padding
  else:
    if 'conv1/weights' in shapes:
      fit['conv1_filters'] = shapes['conv1/weights'][-1]
    if 'conv_capsule1/biases' in shapes:
      fit['num_prime_capsules'], fit['prime_atoms'] = shapes['conv_capsule1/biases'][:2]
    if 'capsule2/biases' in shapes:
      fit['class_atoms'] = shapes['capsule2/biases'][1]
    fit['remake'] = 'recons/recons_1/weights' in shapes
    if 'capsule2/weights' in shapes and 'num_prime_capsules' in fit:
      positions = shapes['capsule2/weights'][0] // fit['num_prime_capsules']
      if positions != model.classes.kernel.shape[0] // hparams.num_prime_capsules:
        fit['padding'] = other_padding
  changes = {k: v for k, v in fit.items() if getattr(hparams, k) != v}
  return format_overrides(changes)


def _read_variables(path, model):
  """(reader, variable-to-shape map) of the checkpoint, with a model-kind check."""
  try:
    reader = tf.train.load_checkpoint(path)
  except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as e:
    raise UserError(f'cannot read checkpoint {path}: {str(e).splitlines()[0]}') from None
  shapes = reader.get_variable_to_shape_map()
  is_capsule = 'capsule2/weights' in shapes
  if isinstance(model, CapsuleModel) and not is_capsule:
    raise UserError(f'checkpoint {path} is the original code\'s baseline (conv_model); '
                    'evaluate it with --model=baseline')
  if isinstance(model, BaselineModel) and is_capsule:
    raise UserError(f'checkpoint {path} is the original code\'s capsule model; evaluate it '
                    'with --model=capsule')
  return reader, shapes


def import_tf1_checkpoint(path: str, model) -> int:
  """Assigns the original checkpoint at `path` to `model`'s variables; returns its global step.

  Raises UserError naming the variable, both shapes and the fitting hparams override when the
  checkpoint does not fit the model.
  """
  if isinstance(model, CapsuleModel):
    mapping = _capsule_map(model)
  elif isinstance(model, BaselineModel):
    mapping = _baseline_map(model)
  else:
    raise UserError(f'checkpoint {path} is the original TF1 code\'s, which has no model '
                    f'{model.name!r}; use --model=capsule or --model=baseline')
  reader, shapes = _read_variables(path, model)
  fix = _fitting_overrides(shapes, model)
  hint = f'; try --hparams_override={fix}' if fix else ''
  extra = sorted(n for n in shapes if n.startswith('recons/') and '/Adam' not in n
                 and n not in mapping)
  if extra:
    raise UserError(f'checkpoint {path} has decoder variables ({extra[0]}, ...) but the model '
                    f'has no decoder{hint}')
  values = {}
  for name, (variable, convert) in mapping.items():
    if name not in shapes:
      raise UserError(f'checkpoint {path} has no variable {name} (expected shape '
                      f'{list(variable.shape)}){hint}')
    stored = reader.get_tensor(name)
    if int(np.prod(stored.shape)) != int(np.prod(variable.shape)):
      raise UserError(f'checkpoint variable {name} has shape {list(shapes[name])} but the model '
                      f'expects {list(variable.shape)}{hint}')
    value = convert(stored)
    if tuple(value.shape) != tuple(variable.shape):
      raise UserError(f'checkpoint variable {name} has shape {list(shapes[name])} but the model '
                      f'expects {list(variable.shape)}{hint}')
    values[name] = value
  for name, (variable, _) in mapping.items():
    variable.assign(values[name].astype(np.float32))
  return int(reader.get_tensor('global_step')) if 'global_step' in shapes else 0
