"""The one shifted MNIST / MultiMNIST sampler, in tf.data, of the reader's generate=True and the
builder: example n is a function of (seed, n) (docs/data_mnist.md "On the fly")."""

import numpy as np
import tensorflow as tf

from input_data import pipeline


def examples(images, labels, *, num_targets, shift, pad, num_pairs, seed, endless, start=0,
             base_shift='per_pair', positions=None):
  """(dataset of example dicts, (height, width), examples per epoch) of uint8 digits [N, H, W].

  endless: random draws, example n a function of (seed, n), from n = start on; else one epoch
  in the builder's order, or only its examples at `positions`. Classes are the labels' own:
  0..max(labels).
  """
  margin = pad + shift  # padded by pad, then room to slice out any shift
  table = tf.constant(np.pad(images, ((0, 0), (margin, margin), (margin, margin)))[..., None])
  shape = (images.shape[1] + 2 * pad, images.shape[2] + 2 * pad)
  if num_targets == 1:
    per_image = (2 * shift + 1) ** 2
    make = _single_maker(table, labels, shape, shift, seed, endless)
  else:
    per_image = num_pairs
    make = _pair_maker(table, labels, shape, shift, num_pairs, seed, endless, base_shift)
  count = len(images) * per_image
  if endless:
    indices = tf.data.Dataset.counter(start)
  elif positions is not None:
    indices = tf.data.Dataset.from_tensor_slices(np.asarray(positions, np.int64))
  else:
    indices = tf.data.Dataset.range(count)
  return indices.map(pipeline.unconverted(make), num_parallel_calls=tf.data.AUTOTUNE), shape, count


def _seeds(seed, n, num):
  """`num` independent stateless seeds [2] for example n."""
  key = tf.stack([tf.constant(seed, tf.int64), tf.cast(n, tf.int64)])
  return tf.unstack(tf.random.experimental.stateless_split(key, num))


def _shifted(table, i, dy, dx, shape, shift):
  """Image i moved down dy and right dx (zero fill): a window of the padded table."""
  begin = tf.stack([tf.cast(i, tf.int32), shift - dy, shift - dx, 0])
  return tf.slice(table, begin, [1, shape[0], shape[1], 1])[0]


def _random_int(seed, shape, low, high):
  """Uniform int32 in [low, high)."""
  return tf.random.stateless_uniform(shape, seed, low, high, dtype=tf.int32)


def _single_maker(table, labels, shape, shift, seed, random):
  """n -> {'image', 'label'}: image n // K at shift n % K (K = (2 shift + 1)^2), or random."""
  labels = tf.constant(labels, tf.int32)
  side = 2 * shift + 1
  num_images = int(labels.shape[0])

  def make(n):
    if random:
      image_seed, shift_seed = _seeds(seed, n, 2)
      i = _random_int(image_seed, [], 0, num_images)
      dy, dx = tf.unstack(_random_int(shift_seed, [2], -shift, shift + 1))
    else:
      n = tf.cast(n, tf.int32)
      i, t = n // (side * side), n % (side * side)
      dy, dx = t // side - shift, t % side - shift
    return {'image': _shifted(table, i, dy, dx, shape, shift), 'label': labels[i]}
  return make


def _pair_maker(table, labels, shape, shift, num_pairs, seed, random, base_shift):
  """n -> MultiMNIST example: base image, a partner of another class, both shifted; with
  base_shift='once' the base's shift is keyed by the image alone."""
  others = [np.flatnonzero(labels != c) for c in range(int(labels.max()) + 1)]
  counts = tf.constant([len(o) for o in others], tf.int32)
  width = max(len(o) for o in others)
  others = tf.constant(np.stack([np.pad(o, (0, width - len(o))) for o in others]), tf.int32)
  labels = tf.constant(labels, tf.int32)
  num_images = int(labels.shape[0])

  def make(n):
    base_seed, partner_seed, shift_seed = _seeds(seed, n, 3)
    if random:
      i = _random_int(base_seed, [], 0, num_images)
    else:
      i = tf.cast(n // num_pairs, tf.int32)
    label_1 = labels[i]
    partner = others[label_1, _random_int(partner_seed, [], 0, counts[label_1])]
    shifts = _random_int(shift_seed, [4], -shift, shift + 1)
    if base_shift == 'once':
      image_seed = tf.stack([tf.constant(seed, tf.int64), -1 - tf.cast(i, tf.int64)])  # no n's
      once = _random_int(image_seed, [2], -shift, shift + 1)
      shifts = tf.concat([once, shifts[2:]], 0)
    image_1 = _shifted(table, i, shifts[0], shifts[1], shape, shift)
    image_2 = _shifted(table, partner, shifts[2], shifts[3], shape, shift)
    merged = tf.minimum(tf.cast(image_1, tf.int32) + tf.cast(image_2, tf.int32), 255)
    return {'image_1': image_1, 'image_2': image_2, 'merged': tf.cast(merged, tf.uint8),
            'label_1': label_1, 'label_2': labels[partner]}
  return make
