"""Loads checkpoints written by the original TF1 capsule code into a `CapsuleModel`.

The original saved name-based variables (`conv1/weights`, `conv_capsule1/biases`, ...) plus Adam
slots and `beta*_power`, which are ignored here. Layouts match ours except the primary-capsule
bias, stored as [types, atoms, 1, 1].
"""

import numpy as np
import tensorflow as tf

from configs.errors import UserError


def is_tf1_checkpoint(path: str) -> bool:
  """True when `path` (a checkpoint prefix) holds the original code's name-based variables."""
  try:
    return 'conv1/weights' in tf.train.load_checkpoint(path).get_variable_to_shape_map()
  except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError):
    return False


def _variable_map(model):
  """Original variable name -> (our variable, reshape from the stored layout)."""
  mapping = {
      'conv1/weights': model.conv1.kernel, 'conv1/biases': model.conv1.bias,
      'conv_capsule1/weights': model.primary.kernel, 'conv_capsule1/biases': model.primary.bias,
      'capsule2/weights': model.classes.kernel, 'capsule2/biases': model.classes.bias,
  }
  if model.decoder is not None:
    for i, layer in enumerate(model.decoder.hidden + [model.decoder.pixels]):
      mapping[f'recons/recons_{i + 1}/weights'] = layer.kernel
      mapping[f'recons/recons_{i + 1}/biases'] = layer.bias
  return mapping


def _fitting_overrides(shapes, model):
  """The hparams overrides under which `model` would have the checkpoint's shapes."""
  hparams, fit = model.hparams, {}
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
      fit['padding'] = 'SAME' if hparams.padding == 'VALID' else 'VALID'
  changes = {k: v for k, v in fit.items() if getattr(hparams, k) != v}
  return ','.join(f'{k}={str(v).lower() if isinstance(v, bool) else v}' for k, v in changes.items())


def import_tf1_checkpoint(path: str, model) -> int:
  """Assigns the original checkpoint at `path` to `model`'s variables; returns its global step.

  Raises UserError naming the variable, both shapes and the fitting hparams override when the
  checkpoint does not fit the model.
  """
  try:
    reader = tf.train.load_checkpoint(path)
  except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as e:
    raise UserError(f'cannot read checkpoint {path}: {str(e).splitlines()[0]}') from None
  shapes = reader.get_variable_to_shape_map()
  fix = _fitting_overrides(shapes, model)
  hint = f'; try --hparams_override={fix}' if fix else ''
  mapping = _variable_map(model)
  extra = sorted(n for n in shapes if n.startswith('recons/') and '/Adam' not in n
                 and n not in mapping)
  if extra:
    raise UserError(f'checkpoint {path} has decoder variables ({extra[0]}, ...) but the model '
                    f'has no decoder{hint}')
  values = {}
  for name, variable in mapping.items():
    if name not in shapes:
      raise UserError(f'checkpoint {path} has no variable {name} (expected shape '
                      f'{list(variable.shape)}){hint}')
    value = reader.get_tensor(name)
    if name == 'conv_capsule1/biases' and value.ndim == 4:
      value = value.reshape(value.shape[:2])
    if tuple(value.shape) != tuple(variable.shape):
      raise UserError(f'checkpoint variable {name} has shape {list(shapes[name])} but the model '
                      f'expects {list(variable.shape)}{hint}')
    values[name] = value
  for name, variable in mapping.items():
    variable.assign(values[name].astype(np.float32))
  return int(reader.get_tensor('global_step')) if 'global_step' in shapes else 0
