"""CNN baselines: the original code's `conv_model` and the paper's (larger) comparison CNN."""

import keras

from configs.hparams import HParams
from configs.spec import DatasetSpec
from models.registry import ComputeOptions, register


def _conv(filters, padding, name):
  """5x5 stride-1 ReLU conv, weights truncated normal 0.05, biases 0.1 (the original's)."""
  return keras.layers.Conv2D(
      filters, 5, padding=padding.lower(), activation='relu', name=name,
      kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.05),
      bias_initializer=keras.initializers.Constant(0.1))


def _dense(units, name, activation=None, **kwargs):
  """Fully connected, weights truncated normal 0.1, biases 0.1 (the original's)."""
  return keras.layers.Dense(
      units, activation=activation, name=name,
      kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.1),
      bias_initializer=keras.initializers.Constant(0.1), **kwargs)


def conv_pool_size(size: int, padding: str) -> int:
  """Height (or width) after the original's two 5x5 convs, each followed by a 2x2 SAME pool."""
  for _ in range(2):
    size = -(-(size if padding == 'SAME' else size - 4) // 2)
  return size


class _Sequential(keras.Model):
  """Runs `self.body` on the batch's images; the last layer's output is the logits."""

  def __init__(self, hparams: HParams, spec: DatasetSpec,
               options: ComputeOptions = ComputeOptions(), **kwargs):
    del options  # plain convs and matmuls: nothing to choose
    super().__init__(**kwargs)
    self.hparams, self.spec = hparams, spec

  def call(self, batch, training=False):
    net = batch['images']
    for layer in self.body:
      net = layer(net, training=training)  # Keras passes `training` only to layers that take it
    return {'logits': net}


@register('baseline')
class BaselineModel(_Sequential):
  """The original's `conv_model`: conv 5x5 512 + 2x2 max pool -> conv 5x5 256 + pool -> fc 1024
  ReLU -> linear logits. Convs take `hparams.padding` (VALID: 7,495,946 parameters on MNIST);
  the loss is `hparams.loss_type` (the original trains it with the margin loss by default).

  Flattening is NHWC here, NCHW in the original: models/tf1_import.py permutes fc1 on import.
  """

  def __init__(self, hparams: HParams, spec: DatasetSpec,
               options: ComputeOptions = ComputeOptions(), **kwargs):
    super().__init__(hparams, spec, options, **kwargs)
    self.conv1 = _conv(512, hparams.padding, 'conv1')
    self.conv2 = _conv(256, hparams.padding, 'conv2')
    self.fc1 = _dense(1024, 'fc1', 'relu')
    self.logits_layer = _dense(spec.num_classes, 'softmax_layer', dtype='float32')
    self.body = [self.conv1, keras.layers.MaxPool2D(2, padding='same'),
                 self.conv2, keras.layers.MaxPool2D(2, padding='same'),
                 keras.layers.Flatten(), self.fc1, self.logits_layer]


@register('paper_baseline')
class PaperBaselineModel(_Sequential):
  """The paper's comparison CNN (section 5): convs of 256, 256, 128 channels (5x5, stride 1,
  no pooling) -> fc 328 -> fc 192 -> dropout -> logits; 35.4M parameters on MNIST with SAME
  padding (preset `paper_baseline`). The paper gives no dropout rate: 0.5 is this project's.
  """

  DROPOUT = 0.5

  def __init__(self, hparams: HParams, spec: DatasetSpec,
               options: ComputeOptions = ComputeOptions(), **kwargs):
    super().__init__(hparams, spec, options, **kwargs)
    # Layers with weights are attributes: TF checkpoints skip the items of a list.
    self.conv1 = _conv(256, hparams.padding, 'conv1')
    self.conv2 = _conv(256, hparams.padding, 'conv2')
    self.conv3 = _conv(128, hparams.padding, 'conv3')
    self.fc1, self.fc2 = _dense(328, 'fc1', 'relu'), _dense(192, 'fc2', 'relu')
    self.logits_layer = _dense(spec.num_classes, 'softmax_layer', dtype='float32')
    self.body = [self.conv1, self.conv2, self.conv3, keras.layers.Flatten(), self.fc1, self.fc2,
                 keras.layers.Dropout(self.DROPOUT), self.logits_layer]
