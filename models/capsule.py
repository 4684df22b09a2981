"""The capsule network of the paper: conv -> primary capsules -> class capsules (+ decoder)."""

import keras
import tensorflow as tf

from configs.hparams import HParams
from configs.spec import DatasetSpec
from layers import Capsule, ConvCapsule, Decoder, safe_norm
from models.registry import ComputeOptions, register


@register('capsule')
class CapsuleModel(keras.Model):
  """Conv 9x9 ReLU -> primary capsules (9x9, stride 2) -> class capsules -> lengths as logits.

  Called on a batch dict (see input_data) it returns `logits` [batch, classes] (capsule
  lengths), `capsules` [batch, classes, class_atoms] and, with `remake`, `reconstructions`:
  one [batch, pixels] per target.
  """

  def __init__(self, hparams: HParams, spec: DatasetSpec,
               options: ComputeOptions = ComputeOptions(), **kwargs):
    super().__init__(**kwargs)
    self.hparams, self.spec = hparams, spec
    self.conv1 = keras.layers.Conv2D(
        hparams.conv1_filters, 9, padding=hparams.padding.lower(), activation='relu',
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=5e-2),
        bias_initializer=keras.initializers.Constant(0.1), name='conv1')
    self.primary = ConvCapsule(hparams.num_prime_capsules, hparams.prime_atoms, kernel_size=9,
                               strides=2, padding=hparams.padding, num_routing=1,
                               leaky=hparams.leaky, conv_impl=options.conv_impl,
                               name='conv_capsule1')
    self.classes = Capsule(spec.num_classes, hparams.class_atoms, num_routing=hparams.routing,
                           leaky=hparams.leaky, jit_routing=options.jit_routing, name='capsule2')
    self.decoder = (Decoder(spec.height * spec.width * spec.depth, name='recons')
                    if hparams.remake else None)

  def call(self, batch, training=False):
    features = self.conv1(batch['images'])
    primary = self.primary(tf.expand_dims(features, 3))  # one input capsule type
    # The original orders input capsules type-major: index = type * (H * W) + row * W + col.
    primary = tf.transpose(primary, [0, 3, 1, 2, 4])
    primary = tf.reshape(primary, [-1, primary.shape[1] * primary.shape[2] * primary.shape[3],
                                   primary.shape[4]])
    capsules = self.classes(tf.cast(primary, self.compute_dtype))
    outputs = {'logits': safe_norm(capsules), 'capsules': capsules,
               'primary_capsules': primary}
    if self.decoder is not None:
      targets = ['recons_label'] + (['spare_label'] if self.spec.num_targets == 2 else [])
      outputs['reconstructions'] = [self.decoder(capsules, batch[t]) for t in targets]
    return outputs
