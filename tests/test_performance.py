"""Performance properties that can fail on any machine: tensor sizes and the benchmark's table.

Timings themselves are never asserted here; `python -m benchmarks.throughput` measures them.
"""

import re
import subprocess
import sys

import numpy as np
import tensorflow as tf

from benchmarks.throughput import OUT_OF_MEMORY, largest_batch
from layers import Capsule
from tests.cli import ROOT


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


def _benchmark(*args):
  return subprocess.run([sys.executable, '-m', 'benchmarks.throughput', *args],
                        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)


def test_benchmark_prints_interleaved_medians_and_ratios_to_the_first_row():
  done = _benchmark('--rows=reference,capsule', '--batch_size=4', '--steps=1', '--warmup=1',
                    '--repeats=2')
  assert done.returncode == 0, done.stderr[-2000:]
  rounds = re.findall(r'round (\d)/2 (\w+): ([\d.]+) train img/s', done.stderr)
  assert [(r, n) for r, n, _ in rounds] == [('1', 'reference'), ('1', 'capsule'),
                                            ('2', 'reference'), ('2', 'capsule')]
  assert re.search(r'peak float32 matmul: \d+ GFLOP/s; batch 4; median of 2', done.stdout)
  table = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()
           if line.split() and line.split()[0] in ('reference', 'capsule')}
  for name in ('reference', 'capsule'):
    median, spread, ratio, _, gflop, roofline, _, input_rate = table[name]
    rates = sorted(float(v) for _, n, v in rounds if n == name)
    assert abs(float(median) - np.median(rates)) <= 0.1  # the rounds print rounded rates
    assert spread == f'{rates[0]:.1f}-{rates[1]:.1f}'
    assert abs(float(gflop) - 1.21) < 0.01  # the model's FLOPs, from TF's graph profiler
    assert roofline.endswith('%') and float(input_rate) > 0
  assert table['reference'][2] == '1.00'
  same_round = [float(c) / float(r) for (_, _, r), (_, _, c) in zip(rounds[::2], rounds[1::2])]
  assert abs(float(table['capsule'][2]) - np.median(same_round)) <= 0.02


def test_benchmark_rejects_unknown_rows():
  done = _benchmark('--rows=capsule,resnet')
  assert done.returncode != 0 and 'unknown row(s) resnet' in done.stderr


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
