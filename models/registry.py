"""Model registry: `--model=NAME` resolves to a builder registered under that name."""

import dataclasses

import tensorflow as tf

from configs.registry import Registry
from configs.run_config import MODELS
from configs.spec import DatasetSpec


@dataclasses.dataclass(frozen=True)
class ComputeOptions:
  """How layers compute, not what: the numbers are the same (tests/test_fast_paths.py).

  runner/devices.py picks them per device from the run's config.
  conv_impl: primary-capsule convolution, 'conv' (tf.nn.conv2d) or 'matmul' (CPU-fast).
  jit_routing: compile the class capsules' votes and routing with XLA.
  """
  conv_impl: str = 'conv'
  jit_routing: bool = False


_MODELS = Registry('model', MODELS)
register = _MODELS.register  # decorator of `builder(hparams, spec, options: ComputeOptions)`


def zeros_batch(spec: DatasetSpec, batch_size: int = 1):
  """An all-zero batch dict shaped like `spec`'s batches (to build models and trace steps)."""
  image = tf.zeros([batch_size, spec.height, spec.width, spec.depth])
  batch = {'images': image, 'labels': tf.zeros([batch_size, spec.num_classes]),
           'recons_image': image, 'recons_label': tf.zeros([batch_size], tf.int32)}
  if spec.num_targets == 2:
    batch.update(spare_image=image, spare_label=tf.zeros([batch_size], tf.int32))
  return batch


def build_model(name, hparams, spec, options: ComputeOptions = ComputeOptions()):
  """Builds the model `name` for `spec`'s input and creates its variables."""
  model = _MODELS.get(name)(hparams, spec, options)
  model(zeros_batch(spec))
  return model
