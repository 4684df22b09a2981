"""Export: a checkpoint as a SavedModel that needs only TensorFlow (tf.saved_model.load).

Its serving_default signature takes `images`, uint8 [batch, H, W, C] of the training images'
size, and returns `scores` (the logits --predictions_out writes), `classes` and, for capsule
models, `poses` (the class capsules) and `reconstructions` (of the predicted class). The
dataset's test-time preprocessing is inside the graph. The variables `class_names` and
`metadata` (JSON: input shape, class names, resize_mode, hparams, step, ...) travel with it.
"""

import dataclasses
import json
import os

import tensorflow as tf
from absl import logging

from configs.errors import UserError
from configs.run_config import RunConfig
from models import build_model
from runner import checkpoints
from runner.inputs import test_preparation

SIGNATURE = 'serving_default'


class Serving(tf.Module):
  """The model behind one tf.function of raw images, with its metadata as variables."""

  def __init__(self, model, preprocess, metadata: dict):
    super().__init__()
    # The model's variables, not the Keras model: saving a Keras model traces its own call.
    self.model_variables = list(model.variables)
    self._model = lambda: model
    self._preprocess = preprocess
    self.class_names = tf.Variable(metadata['class_names'], trainable=False)
    self.metadata = tf.Variable(json.dumps(metadata, sort_keys=True), trainable=False)
    spec = tf.TensorSpec([None, *metadata['input_shape']], tf.uint8, name='images')
    self.serve = tf.function(self._serve, input_signature=[spec], autograph=False)

  def _serve(self, images):  # pylint: disable=redefined-outer-name
    """uint8 images [B, H, W, C] -> scores, classes (and poses, reconstructions)."""
    labels = tf.zeros(tf.shape(images)[:1], tf.int32)  # the decoder's target, unused here
    model = self._model()
    outputs = model({'images': self._preprocess(images), 'recons_label': labels,
                          'spare_label': labels})
    scores = tf.cast(outputs['logits'], tf.float32)
    served = {'scores': scores, 'classes': tf.argmax(scores, axis=1, output_type=tf.int32)}
    if 'capsules' in outputs:
      served['poses'] = tf.cast(outputs['capsules'], tf.float32)
    if getattr(model, 'decoder', None) is not None:
      spec = model.spec
      pixels = model.decoder(outputs['capsules'], served['classes'])
      served['reconstructions'] = tf.reshape(tf.cast(pixels, tf.float32),
                                             [-1, spec.height, spec.width, spec.depth])
    return served


def check_target(path: str, overwrite: bool):
  """UserError for an --export_dir that holds something, unless --overwrite replaces a folder."""
  if tf.io.gfile.exists(path):
    if not tf.io.gfile.isdir(path):
      raise UserError(f'--export_dir={path} is a file, not a folder; choose a folder')
    if tf.io.gfile.listdir(path) and not overwrite:
      raise UserError(f'--export_dir={path} exists and is not empty; pass --overwrite to '
                      'replace it, or choose a new folder')
  checkpoints.check_writable(os.path.dirname(os.path.abspath(path)))


def export(config: RunConfig) -> dict:
  """Writes --checkpoint as a SavedModel in --export_dir (whole, or not at all); returns its
  metadata."""
  check_target(config.export_dir, config.overwrite)
  path = checkpoints.resolve(config.checkpoint)
  spec, input_shape, preprocess = test_preparation(config)
  model = build_model(config.model, config.hparams, spec)  # TF's own ops: portable, no XLA
  step = checkpoints.restore_model(model, path, config)
  metadata = {
      'model': config.model, 'dataset': config.dataset, 'checkpoint': path, 'step': step,
      'input_shape': list(input_shape), 'num_targets': spec.num_targets,
      'class_names': list(getattr(spec, 'class_names', ()) or map(str, range(spec.num_classes))),
      'resize_mode': config.resize_mode, 'hparams': dataclasses.asdict(config.hparams)}
  module = Serving(model, preprocess, metadata)
  checkpoints.replace_dir(config.export_dir, lambda staging: tf.saved_model.save(
      module, staging, signatures={SIGNATURE: module.serve}))
  logging.info('exported %s (step %d) to %s: %s takes uint8 images [batch, %s]', path, step,
               config.export_dir, SIGNATURE, ', '.join(map(str, input_shape)))
  return metadata
