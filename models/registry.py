"""Model registry: `--model=NAME` resolves to a builder registered under that name."""

import dataclasses

from configs.registry import Registry
from input_data import zeros_batch


@dataclasses.dataclass(frozen=True)
class ComputeOptions:
  """How layers compute, not what: the numbers are the same (tests/test_fast_paths.py).

  runner/devices.py picks them per device from the run's config.
  conv_impl: primary-capsule convolution, 'conv' (tf.nn.conv2d) or 'matmul' (CPU-fast).
  jit_routing: compile the class capsules' votes and routing with XLA.
  """
  conv_impl: str = 'conv'
  jit_routing: bool = False


_MODELS = Registry('model')
register = _MODELS.register  # decorator of `builder(hparams, spec, options: ComputeOptions)`


def check_model_name(name: str):
  """Raises UserError listing the models unless `name` is one."""
  _MODELS.get(name)


def build_model(name, hparams, spec, options: ComputeOptions = ComputeOptions()):
  """Builds the model `name` for `spec`'s input and creates its variables."""
  model = _MODELS.get(name)(hparams, spec, options)
  model(zeros_batch(spec))
  return model
