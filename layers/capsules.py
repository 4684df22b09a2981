"""Capsule layers: convolutional (primary) capsules and fully connected (class) capsules."""

import keras
import tensorflow as tf

from layers.convolution import conv2d
from layers.routing import route


def _weights(stddev):
  return keras.initializers.TruncatedNormal(stddev=stddev)


_BIAS_INIT = keras.initializers.Constant(0.1)


class ConvCapsule(keras.layers.Layer):
  """The original `conv_slim_capsule`: one kernel shared by all input capsule types.

  Input [batch, height, width, in_caps, in_atoms];
  output [batch, out_h, out_w, out_caps, out_atoms].
  Each input type is convolved with the same kernel into votes for every output type, then
  routed over the output types at each position. `conv_impl`: 'conv' (tf.nn.conv2d) or
  'matmul' (patches x one matmul, faster on CPUs; layers/convolution.py).
  """

  def __init__(self, out_caps, out_atoms, kernel_size, strides, padding='VALID', num_routing=1,
               leaky=False, conv_impl='conv', **kwargs):
    super().__init__(**kwargs)
    if padding not in ('VALID', 'SAME'):
      raise ValueError(f'padding must be VALID or SAME, got {padding!r}')
    if num_routing < 1:
      raise ValueError(f'num_routing must be at least 1, got {num_routing}')
    if conv_impl not in ('conv', 'matmul'):
      raise ValueError(f'conv_impl must be conv or matmul, got {conv_impl!r}')
    self.out_caps, self.out_atoms = out_caps, out_atoms
    self.kernel_size, self.strides, self.padding = kernel_size, strides, padding
    self.num_routing, self.leaky = num_routing, leaky
    self.conv_impl = conv_impl

  def build(self, input_shape):
    in_atoms = input_shape[-1]
    self.kernel = self.add_weight(
        name='weights', shape=(self.kernel_size, self.kernel_size, in_atoms,
                               self.out_caps * self.out_atoms),
        initializer=_weights(0.1))
    self.bias = self.add_weight(name='biases', shape=(self.out_caps, self.out_atoms),
                                initializer=_BIAS_INIT, autocast=False)

  def call(self, inputs):
    batch = tf.shape(inputs)[0]
    _, height, width, in_caps, in_atoms = inputs.shape
    if in_caps > 1:  # each input type convolved on its own, as a batch of images
      inputs = tf.transpose(inputs, [0, 3, 1, 2, 4])
    per_type = tf.reshape(inputs, [-1, height, width, in_atoms])
    conv = conv2d(per_type, tf.cast(self.kernel, per_type.dtype), self.strides, self.padding,
                  matmul=self.conv_impl == 'matmul')
    _, out_h, out_w, _ = conv.shape
    if in_caps == 1:
      # One input type (primary capsules): positions are already in routing order.
      votes = tf.reshape(conv, [-1, self.out_caps, 1, self.out_atoms])
    else:
      votes = tf.reshape(conv, [batch, in_caps, out_h, out_w, self.out_caps, self.out_atoms])
      votes = tf.reshape(tf.transpose(votes, [0, 2, 3, 4, 1, 5]),
                         [-1, self.out_caps, in_caps, self.out_atoms])
    votes = tf.cast(votes, tf.float32)
    parents = route(votes, self.bias, self.num_routing, self.leaky)
    return tf.reshape(parents, [batch, out_h, out_w, self.out_caps, self.out_atoms])

  def compute_output_shape(self, input_shape):
    batch, height, width = input_shape[:3]
    if self.padding == 'SAME':
      out_h, out_w = -(-height // self.strides), -(-width // self.strides)
    else:
      out_h = (height - self.kernel_size) // self.strides + 1
      out_w = (width - self.kernel_size) // self.strides + 1
    return (batch, out_h, out_w, self.out_caps, self.out_atoms)

  def get_config(self):
    return {**super().get_config(), 'out_caps': self.out_caps, 'out_atoms': self.out_atoms,
            'kernel_size': self.kernel_size, 'strides': self.strides, 'padding': self.padding,
            'num_routing': self.num_routing, 'leaky': self.leaky, 'conv_impl': self.conv_impl}


class Capsule(keras.layers.Layer):
  """Fully connected capsules (the original `capsule`): [batch, in_caps, in_atoms] -> parents.

  Votes are one batched matmul per input capsule (W_ij u_i), never a tiled product.
  Output [batch, out_caps, out_atoms]. `jit_routing` compiles votes and routing with XLA inside
  tf.functions; an eager call (building the model, the summary strip) runs TF's kernels instead,
  as compiling its one shape would take longer (0.2 s) than running it.
  """

  def __init__(self, out_caps, out_atoms, num_routing=3, leaky=False, jit_routing=False,
               **kwargs):
    super().__init__(**kwargs)
    if num_routing < 1:
      raise ValueError(f'num_routing must be at least 1, got {num_routing}')
    self.out_caps, self.out_atoms = out_caps, out_atoms
    self.num_routing, self.leaky, self.jit_routing = num_routing, leaky, jit_routing

  def build(self, input_shape):
    _, in_caps, in_atoms = input_shape
    self.kernel = self.add_weight(
        name='weights', shape=(in_caps, in_atoms, self.out_caps * self.out_atoms),
        initializer=_weights(0.1))
    self.bias = self.add_weight(name='biases', shape=(self.out_caps, self.out_atoms),
                                initializer=_BIAS_INIT, autocast=False)

  def call(self, inputs):
    jit = self.jit_routing and not tf.executing_eagerly()
    return (_jit_votes_and_routing if jit else _votes_and_routing)(
        inputs, tf.cast(self.kernel, inputs.dtype), tf.cast(self.bias, tf.float32),
        self.out_caps, self.out_atoms, self.num_routing, self.leaky)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.out_caps, self.out_atoms)

  def get_config(self):
    return {**super().get_config(), 'out_caps': self.out_caps, 'out_atoms': self.out_atoms,
            'num_routing': self.num_routing, 'leaky': self.leaky,
            'jit_routing': self.jit_routing}


def _votes_and_routing(inputs, kernel, biases, out_caps, out_atoms, num_routing, leaky):
  """Votes W_ij u_i, then routing: [batch, in_caps, in_atoms] -> [batch, out_caps, out_atoms].

  Compiled by XLA (`_jit_votes_and_routing`), which fuses the many passes over the votes, it ran
  1.4x faster than TF's kernels for the paper's 1152 x 10 votes on a CPU, forward and backward.
  """
  in_caps = inputs.shape[1]
  # One [batch, in_atoms] x [in_atoms, out_caps * out_atoms] matmul per input capsule.
  votes = tf.matmul(tf.transpose(inputs, [1, 0, 2]), kernel)
  votes = tf.reshape(votes, [in_caps, -1, out_caps, out_atoms])
  votes = tf.cast(tf.transpose(votes, [1, 2, 0, 3]), tf.float32)  # parent-major for routing
  return route(votes, biases, num_routing, leaky)


_jit_votes_and_routing = tf.function(_votes_and_routing, jit_compile=True, autograph=False)
