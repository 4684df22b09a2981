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

import numpy as np
import tensorflow as tf
from absl import logging

from configs.errors import UserError
from configs.run_config import RunConfig
from input_data import builder, cifar10, folder, images, mnist, norb
from input_data.pipeline import crop_or_distort
from models import build_model
from runner import checkpoints
from runner.inputs import make_dataset

SIGNATURE = 'serving_default'


def _scaled(batch):
  """uint8 -> float32 [0, 1], as the MNIST and affNIST readers scale."""
  return tf.cast(batch, tf.float32) * np.float32(1 / 255)


def _mnist_input(config, spec):
  if not config.distort:
    return (spec.height, spec.width, spec.depth), _scaled
  crop = mnist.CROP  # mnist.distort_images takes it off, centrally at test time
  return (spec.height + crop, spec.width + crop, 1), lambda b: mnist.distort_images(_scaled(b))


def _affnist_input(config, spec):
  del config
  return (spec.height, spec.width, spec.depth), _scaled


def _cifar10_input(config, spec):
  """The central crop, standardized: the reader's test split (pipeline.crop_or_distort)."""
  del config, spec
  def preprocess(batch):
    return crop_or_distort(tf.cast(batch, tf.float32), cifar10.CROP_SIZE, cifar10.distort_images)
  return (cifar10.IMAGE_SIZE, cifar10.IMAGE_SIZE, cifar10.DEPTH), preprocess


def _norb_input(config, spec):
  """Pairs as the reader downsamples them (--image_size, default 48), uint8."""
  size = int(config.image_size or norb.IMAGE_SIZE)
  def preprocess(batch):  # the central crop (of the distorted size), standardized
    return crop_or_distort(tf.cast(batch, tf.float32), spec.height, norb.distort_images)
  return (size, size, spec.depth), preprocess


def _image_input(config, spec):
  """folder and tfds: images of --image_size (or the stored size), as decode_one leaves them."""
  options = images.make_options(builder.Options(
      config.dataset, config.data_dir, 'test', 1, 0, False, False,
      dict(config.dataset_options(), channels=spec.depth)))
  size = options.size or (spec.height, spec.width)
  if 'cifar10' in options.augment and not options.size:
    if config.dataset != 'folder':
      raise UserError(f'exporting --dataset={config.dataset} --augment=cifar10 needs the size '
                      'it trained at: pass --image_size')
    size = folder.first_shape(folder.list_split(config.data_dir, 'train'))[:2]
  options = dataclasses.replace(options, size=tuple(size))
  return (*size, spec.depth), lambda b: images.test_images(tf.cast(b, tf.float32) / 255.0,
                                                           options)


_INPUTS = {'mnist': _mnist_input, 'affnist': _affnist_input, 'cifar10': _cifar10_input,
           'norb': _norb_input, 'folder': _image_input, 'tfds': _image_input}


def serving_input(config: RunConfig, spec):
  """(shape [H, W, C] of the uint8 images served, their test-time preprocessing)."""
  return _INPUTS['tfds' if config.dataset.startswith('tfds:') else config.dataset](config, spec)


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
    is_dir = tf.io.gfile.isdir(path)
    if (not is_dir or tf.io.gfile.listdir(path)) and not (overwrite and is_dir):
      raise UserError(f'--export_dir={path} exists and is not empty; pass --overwrite to replace '
                      'it, or choose a new folder')
  checkpoints.check_writable(os.path.dirname(os.path.abspath(path)))


def export(config: RunConfig) -> dict:
  """Writes --checkpoint as a SavedModel in --export_dir (whole, or not at all); returns its
  metadata."""
  check_target(config.export_dir, config.overwrite)
  path = checkpoints.resolve(config.checkpoint)
  _, spec = make_dataset(config, 'test', 1, repeat=False)
  model = build_model(config.model, config.hparams, spec)  # TF's own ops: portable, no XLA
  step = checkpoints.restore_model(model, path, config)
  input_shape, preprocess = serving_input(config, spec)
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
