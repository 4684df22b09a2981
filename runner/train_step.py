"""One training step: the learning rate, the optimizer, and the compiled step over replicas."""

import keras
import tensorflow as tf

from configs.run_config import RunConfig
from layers import correct_and_almost, model_losses
from runner.devices import use_xla

MIN_LEARNING_RATE = 1e-6
# Metrics summed over replicas; the others are averaged (logit_spread too: its mean is below
# the collapse threshold only when every replica's is).
_REDUCE = {'correct': tf.distribute.ReduceOp.SUM, 'count': tf.distribute.ReduceOp.SUM}


def learning_rate(hparams, step):
  """Exponential decay (not staircase) from the global step, floored at 1e-6, as the original."""
  decayed = hparams.learning_rate * hparams.decay_rate ** (
      tf.cast(step, tf.float32) / hparams.decay_steps)
  return tf.maximum(decayed, MIN_LEARNING_RATE)


def make_optimizer(hparams, step, mixed_precision):
  """Adam (TF1's epsilon) whose learning rate follows the global step, not its own count."""
  optimizer = keras.optimizers.Adam(learning_rate=lambda: learning_rate(hparams, step),
                                    epsilon=1e-8)
  if mixed_precision == 'float16':
    optimizer = ReplicaLossScaleOptimizer(optimizer)
  return optimizer


class ReplicaLossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
  """Keras's dynamic loss scaling, with the overflow decided on every replica's gradients.

  Keras checks only the first replica's gradients before the all-reduce: an overflow on another
  replica went into the weights as NaN. Here the count of non-finite values is summed over the
  replicas, so all of them skip the step and halve the scale together (the same branch on every
  worker: no hang).
  """

  def check_finite(self, grads):
    nonfinite = tf.add_n([tf.reduce_sum(tf.cast(~tf.math.is_finite(g), tf.float32))
                          for g in grads if g is not None])
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
      nonfinite = context.all_reduce(tf.distribute.ReduceOp.SUM, nonfinite)
    return tf.equal(nonfinite, 0)


def gradients_and_metrics(model, optimizer, batch, config: RunConfig, num_replicas: int):
  """One replica's forward and backward pass: gradients of its share of the loss, and metrics."""
  with tf.GradientTape() as tape:
    outputs = model(batch, training=True)
    losses = model_losses(batch, outputs, config.hparams.loss_type, config.num_targets)
    loss = losses['total'] / num_replicas
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
      loss = optimizer.scale_loss(loss)
  grads = tape.gradient(loss, model.trainable_variables)
  correct, _ = correct_and_almost(batch['labels'], outputs['logits'], config.num_targets)
  logits = tf.cast(outputs['logits'], tf.float32)
  return grads, {**losses, 'correct': tf.reduce_sum(tf.cast(correct, tf.float32)),
                 'count': tf.cast(tf.shape(correct)[0], tf.float32),
                 'logit_spread': tf.reduce_max(tf.math.reduce_std(logits, axis=0))}


def make_train_step(model, optimizer, strategy, step, config: RunConfig, whole_step_xla=False):
  """`train_steps(iterator, num_steps)`: a tf.function running `num_steps` global batches on
  every replica in one call (no host round trip between them on accelerators).

  It returns the last step's reduced metrics, its learning rate, and `first_bad_step`: the first
  step whose loss was not finite, or 0. XLA compiles the forward and backward pass (on GPUs, or
  with --jit_compile); `whole_step_xla` compiles the optimizer's update into it too (one
  replica only: a mirrored update all-reduces outside XLA), a benchmark row so far.
  """
  num_replicas = strategy.num_replicas_in_sync
  backprop = lambda batch: gradients_and_metrics(model, optimizer, batch, config, num_replicas)
  if use_xla(config.jit_compile) and not whole_step_xla:
    backprop = tf.function(backprop, jit_compile=True, autograph=False)

  def replica_step(batch):
    grads, metrics = backprop(batch)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return metrics

  if whole_step_xla:
    if num_replicas > 1:
      raise ValueError('whole-step XLA needs one replica')
    replica_step = tf.function(replica_step, jit_compile=True, autograph=False)

  # autograph=False here and in the XLA functions above: nothing needs converting, and
  # converting the model's code took a second or two of every start.
  @tf.function(autograph=False)
  def global_step(iterator):
    metrics = strategy.run(replica_step, args=(next(iterator),))
    step.assign_add(1)
    return {k: strategy.reduce(_REDUCE.get(k, tf.distribute.ReduceOp.MEAN), v, axis=None)
            for k, v in metrics.items()}

  def first_bad(bad_step, metrics):
    return tf.where((bad_step == 0) & ~tf.math.is_finite(metrics['total']), step, bad_step)

  @tf.function(autograph=False)
  def train_steps(iterator, num_steps):
    def next_step(done, bad_step, last):
      del last  # the last step's metrics are returned
      metrics = global_step(iterator)
      return done + 1, first_bad(bad_step, metrics), metrics

    # The loop's variables need the metrics' structure: from the step's one trace, whose
    # function the loop then calls (tracing the model twice took a second of every start).
    outputs = global_step.get_concrete_function(iterator).structured_outputs
    zeros = tf.nest.map_structure(lambda t: tf.zeros(t.shape, t.dtype), outputs)
    _, bad_step, metrics = tf.while_loop(lambda done, *_: done < num_steps, next_step,
                                         (tf.zeros_like(num_steps), tf.constant(0, tf.int64),
                                          zeros))
    return {**metrics, 'learning_rate': learning_rate(config.hparams, step),
            'first_bad_step': bad_step}

  return train_steps
