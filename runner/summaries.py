"""TensorBoard output: scalars, reconstruction images, histograms and the run's hparams."""

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api


def write_scalars(writer, step: int, scalars: dict, prefix: str = ''):
  with writer.as_default(step=step):
    for name, value in scalars.items():
      tf.summary.scalar(prefix + name, float(value))


def write_run_hparams(config):
  """Logs hparams and the main flags once, for TensorBoard's HParams tab: at the run's root
  (one HParams session per run directory), with the test accuracy and the training loss as
  its metrics."""
  values = config.hparams.to_dict()
  values.update(model=config.model, dataset=config.dataset, num_targets=config.num_targets,
                batch_size=config.train_batch_size, mixed_precision=config.mixed_precision,
                jit_compile=str(config.jit_compile),
                seed=-1 if config.seed is None else config.seed)
  writer = tf.summary.create_file_writer(config.summary_dir)
  with writer.as_default():
    hparams_api.hparams_config(
        hparams=[hparams_api.HParam(name) for name in values],
        metrics=[hparams_api.Metric('accuracy', group='test', display_name='test accuracy'),
                 hparams_api.Metric('batch_accuracy', group='train',
                                    display_name='training batch accuracy'),
                 hparams_api.Metric('loss/total', group='train', display_name='training loss')])
    hparams_api.hparams(values)
  writer.close()


STRIP_IMAGES = 4  # rows of the reconstruction strip


def reconstruction_strip(batch, reconstructions, max_images: int = STRIP_IMAGES) -> np.ndarray:
  """Rows of input | target | reconstruction (per target), as [n, height, width * k, depth]."""
  images = batch['images'][:max_images]
  shape = images.shape
  columns = [images]
  for name, pixels in zip(('recons_image', 'spare_image'), reconstructions):
    columns += [batch[name][:max_images], tf.reshape(pixels[:max_images], shape)]
  strip = tf.concat([tf.cast(c, tf.float32) for c in columns], axis=2)
  if shape[-1] not in (1, 3):  # e.g. smallNORB's two views: show the first
    strip = strip[..., :1]
  low = tf.reduce_min(strip, axis=[1, 2, 3], keepdims=True)
  high = tf.reduce_max(strip, axis=[1, 2, 3], keepdims=True)
  return ((strip - low) / tf.maximum(high - low, 1e-6)).numpy()


def write_images(writer, step: int, name: str, images: np.ndarray):
  with writer.as_default(step=step):
    tf.summary.image(name, images, max_outputs=len(images))


def write_histograms(writer, step: int, model, outputs: dict):
  """Weights and activations (the model's output tensors), for `verbose` runs."""
  with writer.as_default(step=step):
    for variable in model.trainable_variables:
      tf.summary.histogram(f'weights/{variable.path}', variable)
    for name, value in outputs.items():
      if isinstance(value, tf.Tensor):
        tf.summary.histogram(f'activations/{name}', value)
