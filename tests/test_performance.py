"""Performance properties that can fail on any machine: tensor sizes and the benchmark's table.

Timings themselves are never asserted here; `python -m benchmarks.throughput` measures them.
"""

import functools
import json
import re
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from absl.testing import flagsaver

from benchmarks import throughput
from benchmarks.throughput import MNIST, OUT_OF_MEMORY, OUT_OF_MEMORY_MESSAGES, largest_batch
from layers import Capsule
from tests import cli


def _largest_hlo_tensor(batch, in_caps=1152, in_atoms=8, out_caps=10, out_atoms=16):
  """Elements of the largest array in the XLA program of a class-capsule forward and backward."""
  layer = Capsule(out_caps, out_atoms, num_routing=3)
  inputs = tf.random.stateless_normal([batch, in_caps, in_atoms], seed=[1, 2])
  layer(inputs)

  @tf.function(jit_compile=True)
  def forward_backward(inputs):
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      loss = tf.reduce_sum(tf.square(layer(inputs)))
    return tape.gradient(loss, [inputs] + layer.trainable_variables)

  hlo = forward_backward.experimental_get_compiler_ir(inputs)(stage='hlo')
  shapes = re.findall(r'[fs]32\[([\d,]*)\]', hlo)
  return max(int(np.prod([int(d) for d in s.split(',') if d])) for s in shapes)


def test_routing_never_materialises_more_than_the_votes_and_grows_linearly():
  votes = 8 * 1152 * 10 * 16
  largest = _largest_hlo_tensor(8)
  assert largest == votes  # no tiled inputs ([batch, in, out * atoms, in_atoms] would be 8x)
  assert _largest_hlo_tensor(16) == 2 * largest


def _row(name, train, evaluate, memory, gflop=1.2):
  return {'row': name, 'train_images_per_s': train, 'eval_images_per_s': evaluate,
          'train_gflop_per_image': gflop, 'peak_memory_mb': memory, 'tf32': False}


@pytest.fixture
def benchmark_flags():
  """Sets benchmarks.throughput's flags for one in-process main() call, then restores them."""
  parsed = throughput.FLAGS.is_parsed()
  throughput.FLAGS.mark_as_parsed()
  try:
    yield flagsaver.flagsaver
  finally:
    if not parsed:
      throughput.FLAGS.unparse_flags()


def test_benchmark_tables_give_medians_same_round_ratios_and_rooflines(monkeypatch, capsys,
                                                                      benchmark_flags):
  """main() on given figures: 2 rounds of 3 rows (one failing), then the largest batches."""
  results = {  # (row, batch) -> its figures in each round, or the error line of every try
      ('reference', 4): [_row('reference', 80, 200, 1000), _row('reference', 60, 220, 1100)],
      ('capsule', 4): [_row('capsule', 120, 360, 2000), _row('capsule', 100, 340, 1900)],
      ('capsule_xla', 4): 'ValueError: bad', ('capsule_xla', 8): 'ValueError: bad',
      ('reference', 8): [_row('reference', 150, 400, 1500)],
      ('reference', 16): f'{OUT_OF_MEMORY}: OOM', ('capsule', 8): f'{OUT_OF_MEMORY}: OOM'}

  def run(name, batch):
    figures = results[(name, batch)]
    return figures.pop(0) if isinstance(figures, list) else figures

  monkeypatch.setattr(throughput, '_run_in_subprocess', run)
  monkeypatch.setattr(throughput, 'largest_batch', functools.partial(largest_batch, run=run))
  monkeypatch.setattr(throughput, 'peak_matmul_flops', lambda tf32=False: 200e9)
  monkeypatch.setattr(throughput, 'pipeline_rates', lambda shapes, batch: {MNIST: 5000.0})
  with benchmark_flags(rows='reference,capsule,capsule_xla', repeats=2, batch_size=4,
                       max_batch=16):
    throughput.main([])
  out, err = capsys.readouterr()
  assert re.findall(r'round (\d)/2 (\w+): (.*)', err) == [
      ('1', 'reference', '80.0 train img/s'), ('1', 'capsule', '120.0 train img/s'),
      ('1', 'capsule_xla', 'failed'), ('2', 'reference', '60.0 train img/s'),
      ('2', 'capsule', '100.0 train img/s'), ('2', 'capsule_xla', 'failed')]
  lines = out.splitlines()
  assert lines[0] == ('device: CPU; peak float32 matmul: 200 GFLOP/s; batch 4; median of 2 '
                      'interleaved round(s)')
  assert lines[1].split() == ['row', 'train', 'img/s', 'min-max', 'ratio', 'eval', 'img/s',
                              'GFLOP/img', 'roofline', 'peak', 'MB', 'input', 'img/s']
  # Medians of the rounds; capsule's ratio is the median of its same-round ratios 1.5 and
  # 1.667 (1.58), not the ratio of the medians (110 / 70 = 1.57); roofline: 70 img/s x 1.2
  # GFLOP / 200 GFLOP/s = 42%; peak memory: the largest of the rounds.
  assert lines[2].split() == ['reference', '70.0', '60.0-80.0', '1.00', '210.0', '1.20', '42%',
                              '1100', '5000']
  assert lines[3].split() == ['capsule', '110.0', '100.0-120.0', '1.58', '350.0', '1.20',
                              '66%', '2000', '5000']
  assert len(lines[2]) == len(lines[3]) == len(lines[1])  # the columns line up
  assert lines[4].split() == ['capsule_xla', 'failed:', 'ValueError:', 'bad']
  assert lines[6] == 'largest batch that fits (doubling from 4, up to 16):'
  assert [line.split() for line in lines[8:]] == [
      ['reference', '8', '150.0', '400.0', '90%', '1500'],  # 16 ran out of memory
      ['capsule', 'no', 'batch', 'above', '4', 'fits'],
      ['capsule_xla', '8', 'failed:', 'ValueError:', 'bad']]


@pytest.mark.parametrize('module, args, message', [
    ('benchmarks.throughput', ['--rows=capsule,resnet'], 'unknown row(s) resnet; expected some '
     'of reference, capsule,'),
    ('benchmarks.throughput', ['--stepz=1'], "Unknown command line flag 'stepz'. Did you mean: "
     'steps'),
    ('benchmarks.soak', ['--steps=3', '--warmup=2'], 'flags steps=3, warmup=2: --steps must be a '
     'multiple of --warmup'),
    ('benchmarks.input_pipeline', ['--batches=x'], "flag --batches=x: invalid literal for int()"),
    ('benchmarks.gpu_check', [], '--out=DIR is required')])
def test_a_benchmark_mistake_is_one_error_line(module, args, message):
  """As experiment.py's: one line, exit 2; absl said 'FATAL Flags parsing error' with exit 1."""
  line = cli.assert_one_error_line(cli.run_module(module, *args), message)
  assert line.startswith(f'error: {message}')


def test_largest_batch_doubles_until_memory_runs_out():
  tried = []

  def run(name, batch):
    tried.append(batch)
    return {'row': name, 'train_images_per_s': batch} if batch <= 512 else f'{OUT_OF_MEMORY}: OOM'

  assert largest_batch('capsule', 128, 4096, run) == (
      512, {'row': 'capsule', 'train_images_per_s': 512})
  assert tried == [256, 512, 1024]
  assert largest_batch('capsule', 512, 4096, run) is None
  assert largest_batch('capsule', 128, 300, run)[0] == 256  # the limit caps the search
  failing = lambda name, batch: 'ValueError: bad'
  assert largest_batch('capsule', 128, 4096, failing) == (256, 'ValueError: bad')


@pytest.mark.parametrize('message', OUT_OF_MEMORY_MESSAGES[1:] + (
    'tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating',
    'E external/xla/xla/stream_executor/cuda/cuda_driver.cc] failed to alloc 8589934592 bytes '
    'on host: CUDA_ERROR_OUT_OF_MEMORY: out of memory',
    'CUBLAS_STATUS_ALLOC_FAILED', 'Could not create cudnn handle: CUDNN_STATUS_ALLOC_FAILED',
    'Failed to allocate request for 2.00GiB (2147483648B) on device ordinal 0'))
def test_largest_batch_treats_every_kind_of_out_of_memory_as_too_big(monkeypatch,
                                                                      benchmark_flags, message):
  """Each row process of batch 512 and above fails with `message` on stderr."""
  def fake_process(command, **_):
    batch = int(next(a for a in command if a.startswith('--batch_size=')).split('=')[1])
    if batch >= 512:
      return subprocess.CompletedProcess(command, 1, '', f'Traceback ...\n{message}\n')
    return subprocess.CompletedProcess(command, 0, json.dumps({'batch': batch}), '')

  monkeypatch.setattr(throughput.subprocess, 'run', fake_process)
  with benchmark_flags():
    assert largest_batch('capsule', 128, 4096) == (256, {'batch': 256})
