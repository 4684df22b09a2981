"""The paper's baseline CNN (the original `conv_model`)."""

import keras

from configs.hparams import HParams
from input_data import DatasetSpec
from models.registry import register


@register('baseline')
class BaselineModel(keras.Model):
  """Conv 5x5 512 + 2x2 max pool -> conv 5x5 256 + pool -> fc 1024 ReLU -> linear classes."""

  def __init__(self, hparams: HParams, spec: DatasetSpec, **kwargs):
    super().__init__(**kwargs)
    self.hparams, self.spec = hparams, spec
    init = dict(kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.1),
                bias_initializer=keras.initializers.Constant(0.1))
    self.body = [
        keras.layers.Conv2D(512, 5, padding='same', activation='relu', name='conv1', **init),
        keras.layers.MaxPool2D(2, padding='same'),
        keras.layers.Conv2D(256, 5, padding='same', activation='relu', name='conv2', **init),
        keras.layers.MaxPool2D(2, padding='same'),
        keras.layers.Flatten(),
        keras.layers.Dense(1024, activation='relu', name='fc1', **init),
        keras.layers.Dense(spec.num_classes, name='softmax_layer', dtype='float32', **init),
    ]

  def call(self, batch, training=False):
    net = batch['images']
    for layer in self.body:
      net = layer(net)
    return {'logits': net}
