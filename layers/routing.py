"""Capsule non-linearity and dynamic routing by agreement (Sabour et al. 2017, procedure 1)."""

import tensorflow as tf

_EPSILON = 1e-12  # keeps squash's gradient finite for an all-zero capsule


def squash(capsules: tf.Tensor, axis: int = -1) -> tf.Tensor:
  """v = |s|^2 / (1 + |s|^2) * s / |s| along `axis`; zero (with finite gradient) at s = 0."""
  norm_squared = tf.reduce_sum(tf.square(capsules), axis=axis, keepdims=True)
  return capsules * (tf.sqrt(norm_squared + _EPSILON) / (1.0 + norm_squared))


def safe_norm(capsules: tf.Tensor, axis: int = -1) -> tf.Tensor:
  """Capsule length along `axis`, with a finite gradient at zero length."""
  return tf.sqrt(tf.reduce_sum(tf.square(capsules), axis=axis) + _EPSILON)


def route(votes: tf.Tensor, biases: tf.Tensor, num_iterations: int,
          leaky: bool = False) -> tf.Tensor:
  """Routes votes to parent capsules by agreement, as the 2017 code's `_update_routing`.

  Args:
    votes: [batch, out_caps, in_caps, out_atoms] float32. Parent-major, so that both the
      routed sum and the agreement are one batched matrix-vector product that reads the votes
      once, with no transposed copies.
    biases: [out_caps, out_atoms], added to the routed sum before the squash in every iteration.
    num_iterations: routing iterations (r in the paper).
    leaky: add a zero "leak" logit to the softmax over parents (the original `_leaky_routing`).
  Returns:
    Parent capsules [batch, out_caps, out_atoms].
  """
  out_caps = votes.shape[1]
  # Logits start at zero, so the first iteration's coupling is uniform: skip the softmax.
  uniform = 1.0 / (out_caps + 1 if leaky else out_caps)
  parents = squash(tf.reduce_sum(votes, axis=2) * uniform + biases)
  logits = None
  for _ in range(num_iterations - 1):
    agreement = tf.linalg.matvec(votes, parents)  # [batch, out_caps, in_caps]
    logits = agreement if logits is None else logits + agreement
    coupling = _leaky_softmax(logits) if leaky else tf.nn.softmax(logits, axis=1)
    parents = squash(tf.linalg.matvec(votes, coupling, transpose_a=True) + biases)
  return parents


def _leaky_softmax(logits: tf.Tensor) -> tf.Tensor:
  """Softmax over parents (axis 1) with an extra zero logit whose share is dropped."""
  leak = tf.zeros_like(logits[:, :1])
  return tf.nn.softmax(tf.concat([leak, logits], axis=1), axis=1)[:, 1:]
