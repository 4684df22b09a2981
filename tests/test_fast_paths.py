"""The optimised paths (XLA, patch-matmul convolution, mixed precision) give the plain numbers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import make_hparams
from configs.spec import DatasetSpec
from models import ComputeOptions, build_model, import_tf1_checkpoint
from tests import cli
from tests.conftest import ORACLE_DIR

MNIST = DatasetSpec('mnist', 28, 28, 1, 10)


def oracle_logits(oracle, jit_compile=False, options=ComputeOptions()):
  model = build_model('capsule', make_hparams('mnist', 'num_prime_capsules=2,remake=false'),
                      MNIST, options)
  import_tf1_checkpoint(str(ORACLE_DIR / 'model.ckpt-0'), model)
  images = tf.constant(oracle['input_images'].reshape(-1, 28, 28, 1))
  batch = {'images': images, 'recons_image': images,
           'labels': tf.constant(oracle['input_labels'], tf.float32),
           'recons_label': tf.zeros([8], tf.int32)}
  return tf.function(model, jit_compile=jit_compile)(batch)['logits'].numpy()


@pytest.mark.parametrize('jit_compile', [False, True])
@pytest.mark.parametrize('conv_impl', ['conv', 'matmul'])
@pytest.mark.parametrize('jit_routing', [False, True])
def test_oracle_logits_with_and_without_xla_and_matmul_conv(oracle, jit_compile, conv_impl,
                                                            jit_routing):
  options = ComputeOptions(conv_impl=conv_impl, jit_routing=jit_routing)
  np.testing.assert_allclose(oracle_logits(oracle, jit_compile, options),
                             oracle['expected_logits'], atol=1e-5, rtol=0)


def test_bfloat16_policy_keeps_oracle_logits_within_bfloat16_precision(oracle):
  keras.mixed_precision.set_dtype_policy('mixed_bfloat16')
  try:
    logits = oracle_logits(oracle)
  finally:
    keras.mixed_precision.set_dtype_policy('float32')
  assert logits.dtype == np.float32  # routing and lengths stay float32
  np.testing.assert_allclose(logits, oracle['expected_logits'], atol=0.03)


PRECISIONS = ['bfloat16', 'float16']


@pytest.fixture(scope='module')
def mixed_precision_runs(tmp_path_factory):
  """A run of 2 XLA steps per --mixed_precision, one after another in one process (each run
  sets its own precision): their folder."""
  root = tmp_path_factory.mktemp('mixed_precision')
  data_dir = cli.tiny_mnist_dir(root / 'data')
  cli.run_in_one_process([[f'--data_dir={data_dir}', f'--summary_dir={root}/{precision}', cli.TINY,
                           '--batch_size=4', '--max_steps=2', '--log_every=1',
                           f'--mixed_precision={precision}', '--jit_compile']
                          for precision in PRECISIONS], check=True)
  return root


@pytest.mark.parametrize('precision', PRECISIONS)
def test_mixed_precision_xla_training_runs_and_saves_float32_weights(mixed_precision_runs,
                                                                    precision):
  run = mixed_precision_runs / precision
  losses = [v for _, v in cli.scalars(run / 'train')['loss/total']]
  assert len(losses) == 2 and np.all(np.isfinite(losses))
  reader = tf.train.load_checkpoint(str(run / 'train' / 'model.ckpt-2'))
  dtypes = reader.get_variable_to_dtype_map()
  weights = [k for k in dtypes if k.startswith('model/') and 'OPTIMIZER' not in k]
  assert weights and all(dtypes[k] == tf.float32 for k in weights)
