"""Squash and routing against hand computation and a numpy transcription of the 2017 code."""

import numpy as np
import pytest
import tensorflow as tf

from layers import ConvCapsule, route, squash


def reference_squash(s, axis=-1):
  norm = np.linalg.norm(s, axis=axis, keepdims=True)
  return s / norm * norm**2 / (1 + norm**2)


def route_child_major(votes, biases, num_iterations, leaky=False):
  """`route` for votes laid out [b, i, j, a] as the original's."""
  return route(tf.transpose(tf.constant(votes), [0, 2, 1, 3]), tf.constant(biases),
               num_iterations, leaky).numpy()


def reference_routing(votes, biases, num_iterations, leaky):
  """The original `_update_routing` for votes [b, i, j, a], written out in numpy."""
  logits = np.zeros(votes.shape[:3])
  for _ in range(num_iterations):
    if leaky:
      padded = np.concatenate([np.zeros(logits.shape[:2] + (1,)), logits], axis=2)
      route_ = (np.exp(padded) / np.exp(padded).sum(2, keepdims=True))[:, :, 1:]
    else:
      route_ = np.exp(logits) / np.exp(logits).sum(2, keepdims=True)
    parents = reference_squash((route_[..., None] * votes).sum(1) + biases)
    logits = logits + (votes * parents[:, None]).sum(3)
  return parents


def test_squash_of_3_4_vector_has_length_25_over_26():
  out = squash(tf.constant([[3.0, 4.0]])).numpy()
  np.testing.assert_allclose(out, [[25 / 26 * 0.6, 25 / 26 * 0.8]], rtol=1e-6)


def test_squash_is_zero_with_finite_gradient_at_zero():
  zeros = tf.zeros([2, 3, 8])
  with tf.GradientTape() as tape:
    tape.watch(zeros)
    out = squash(zeros)
  grad = tape.gradient(out, zeros)
  assert np.all(out.numpy() == 0)
  assert np.all(np.isfinite(grad.numpy()))


def test_one_iteration_averages_votes_uniformly_then_adds_bias():
  votes = np.array([[[[1.0, 0.0], [0.0, 2.0]],
                     [[3.0, 0.0], [0.0, 4.0]]]], np.float32)  # [b=1, i=2, j=2, a=2]
  biases = np.array([[0.5, 0.0], [0.0, -1.0]], np.float32)
  # Each parent gets (v_1j + v_2j) / 2 + b_j: parent 0 = [2.5, 0], parent 1 = [0, 2].
  expected = np.stack([[6.25 / 7.25, 0.0], [0.0, 4 / 5]])  # squash(s) = |s|^2/(1+|s|^2) s/|s|
  out = route_child_major(votes, biases, num_iterations=1)
  np.testing.assert_allclose(out[0], expected, rtol=1e-6)


def test_leaky_one_iteration_scales_votes_by_one_over_parents_plus_one():
  votes = np.ones([1, 1, 3, 2], np.float32)
  out = route_child_major(votes, np.zeros([3, 2], np.float32), num_iterations=1, leaky=True)
  np.testing.assert_allclose(out[0], reference_squash(np.full([3, 2], 0.25)), rtol=1e-6)


@pytest.mark.parametrize('num_iterations', [1, 2, 3, 5])
@pytest.mark.parametrize('leaky', [False, True])
def test_routing_matches_original_algorithm(num_iterations, leaky):
  rng = np.random.default_rng(num_iterations)
  votes = rng.normal(size=[4, 6, 5, 3]).astype(np.float32)
  biases = rng.normal(size=[5, 3]).astype(np.float32) * 0.1
  out = route_child_major(votes, biases, num_iterations, leaky)
  np.testing.assert_allclose(out, reference_routing(votes, biases, num_iterations, leaky),
                             rtol=1e-5, atol=1e-6)


def test_three_iterations_by_hand():
  # One input capsule voting [1, 0] for parent 0 and [0, 1] for parent 1, zero biases.
  votes = np.array([[[[1.0, 0.0], [0.0, 1.0]]]], np.float32)
  c = np.array([0.5, 0.5])
  logits = np.zeros(2)
  for _ in range(3):
    parents = [reference_squash(c[j] * votes[0, 0, j]) for j in range(2)]
    logits += [votes[0, 0, j] @ parents[j] for j in range(2)]
    c = np.exp(logits) / np.exp(logits).sum()
  # By symmetry both parents get the same length: c stays [0.5, 0.5], length 0.25 / 1.25.
  out = route_child_major(votes, np.zeros([2, 2], np.float32), 3)
  np.testing.assert_allclose(out[0], np.array(parents), rtol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(out[0], axis=-1), [0.2, 0.2], rtol=1e-6)


@pytest.mark.parametrize('leaky', [False, True])
def test_primary_capsules_are_squashed_conv_over_num_types_plus_bias(leaky):
  types = 3
  layer = ConvCapsule(types, 4, kernel_size=3, strides=2, padding='VALID', leaky=leaky)
  inputs = tf.random.stateless_normal([2, 7, 7, 1, 5], seed=[1, 2])
  out = layer(inputs).numpy()
  conv = tf.nn.conv2d(inputs[:, :, :, 0], layer.kernel, 2, 'VALID').numpy()
  conv = conv.reshape(2, 3, 3, types, 4)
  expected = reference_squash(conv / (types + leaky) + layer.bias.numpy())
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_conv_capsule_routes_each_position_over_output_types():
  layer = ConvCapsule(2, 3, kernel_size=3, strides=1, padding='SAME', num_routing=3)
  inputs = tf.random.stateless_normal([2, 4, 4, 2, 5], seed=[3, 4])  # two input types
  out = layer(inputs).numpy()
  # The original: the shared kernel convolves each input type into [j * atoms] channels.
  per_type = [tf.nn.conv2d(inputs[:, :, :, i], layer.kernel, 1, 'SAME').numpy() for i in range(2)]
  votes = np.stack(per_type, axis=3).reshape(2, 4, 4, 2, 2, 3)  # [b, h, w, i, j, a]
  for row, col in [(0, 0), (1, 2), (3, 3)]:
    expected = reference_routing(votes[:, row, col], layer.bias.numpy(), 3, leaky=False)
    np.testing.assert_allclose(out[:, row, col], expected, rtol=1e-5, atol=1e-6)


def test_layers_round_trip_their_config():
  layer = ConvCapsule(4, 8, kernel_size=9, strides=2, padding='SAME', num_routing=2, leaky=True)
  clone = ConvCapsule.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
