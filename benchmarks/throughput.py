"""Training, evaluation and input images/s of every model configuration, side by side.

  python -m benchmarks.throughput                 # all rows for this machine, batch 128
  python -m benchmarks.throughput --rows=reference,capsule --steps=10 --repeats=5
  python -m benchmarks.throughput --max_batch=4096   # GPUs: also the largest batch that fits

Each row runs in its own process (clean memory peak, its own precision policy). Ratios are
against the first row, measured in the same run; with --repeats the rows run in interleaved
rounds and the table gives medians (the ratio is the median of the ratios within each round,
as shared machines drift by 20% from one minute to the next). `roofline` is training images/s
over (peak matmul FLOP/s / training FLOPs per image), the peak measured on the device with the
row's TF32 setting (TF32 matters on Ampere and later GPUs only); `input img/s` is the row's
input pipeline alone (benchmarks/input_pipeline.py), which must stay far above the training
rate. On GPUs `capsule` is the default (XLA, cuDNN, TF32) and `capsule_no_xla` the same
without XLA.
"""

import atexit
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time

# Before TensorFlow starts a GPU: this process and each row's process take only what they use.
os.environ.setdefault('TF_FORCE_GPU_ALLOW_GROWTH', 'true')

from absl import app, flags  # noqa: E402

from configs.errors import fail, parse_flags
from configs.hparams import CIFAR10_OVERRIDES

flags.DEFINE_string('rows', '', 'Comma-separated rows to run (default: all for this device).')
flags.DEFINE_integer('batch_size', 128, 'Global batch size.')
flags.DEFINE_integer('steps', 6, 'Timed steps per row (after warm-up).')
flags.DEFINE_integer('warmup', 2, 'Untimed steps per row (tracing, compilation, caches).')
flags.DEFINE_integer('steps_per_loop', 0, 'Training steps per compiled call (our rows; 0: 10 on '
                     'GPUs, where a call per step leaves the GPU waiting on the host, 1 on CPUs).')
flags.DEFINE_integer('repeats', 1, 'Interleaved rounds over all rows; the table shows medians.')
flags.DEFINE_integer('max_batch', 0, 'If above --batch_size: also find, per row, the largest batch '
                     '(doubling from --batch_size up to this) that fits in memory, and its rates. '
                     'Meant for GPUs.')
flags.DEFINE_string('largest_rows', '', 'With --max_batch: the rows to find the largest batch '
                    'for (default: every row run).')
flags.DEFINE_string('row', '', 'Internal: run this one row and print it as JSON.')
FLAGS = flags.FLAGS

MNIST = ('mnist', 28, 28, 1, 10, 1)
MULTIMNIST = ('mnist', 36, 36, 1, 10, 2)
CIFAR10 = ('cifar10', 24, 24, 3, 10, 1)
# The input pipeline (benchmarks/input_pipeline.py row) that feeds each dataset shape.
PIPELINES = {MNIST: 'mnist_train (files)', MULTIMNIST: 'multimnist_train (files)',
             CIFAR10: 'cifar10_train (distorted)'}
# name -> (model, dataset shape, hparams overrides, RunConfig settings): set as users set them.
ROWS = {
    'reference': ('reference', MNIST, '', {}),
    'capsule': ('capsule', MNIST, '', {}),
    'capsule_tf_conv': ('capsule', MNIST, '', {'conv_impl': 'conv'}),
    'capsule_xla': ('capsule', MNIST, '', {'jit_compile': True}),
    'capsule_no_xla': ('capsule', MNIST, '', {'jit_compile': False}),
    'capsule_notf32': ('capsule', MNIST, '', {'tf32': False}),
    'capsule_xla_step': ('capsule', MNIST, '', {'jit_compile': True}),
    'multimnist': ('capsule', MULTIMNIST, '', {}),
    'cifar10': ('capsule', CIFAR10, CIFAR10_OVERRIDES, {}),
    'baseline': ('baseline', MNIST, '', {}),
    'capsule_bf16': ('capsule', MNIST, '', {'mixed_precision': 'bfloat16'}),
    'capsule_xla_bf16': ('capsule', MNIST, '', {'jit_compile': True,
                                                'mixed_precision': 'bfloat16'}),
}
# The optimizer's update inside the replica's XLA computation too (runner.training's
# whole_step_xla): a row until a GPU measurement shows it faster than the default.
WHOLE_STEP_ROWS = ('capsule_xla_step',)
CPU_ROWS = ['reference', 'capsule', 'capsule_tf_conv', 'capsule_xla', 'capsule_bf16', 'multimnist',
            'cifar10', 'baseline']
# On GPUs capsule_tf_conv and capsule_xla are the default configuration (cuDNN, XLA): no rows.
GPU_ROWS = ['reference', 'capsule_no_xla', 'capsule', 'capsule_notf32', 'capsule_xla_step',
            'capsule_bf16', 'capsule_xla_bf16', 'multimnist', 'cifar10', 'baseline']


def _timed(fn, warmup, steps):
  """Median seconds per call: robust to other work on a shared machine."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def peak_matmul_flops(tf32=False, repeats=5):
  """This device's float32 matmul rate (with TF32 if asked), FLOP/s: the best of `repeats` (a
  peak, not a typical). Each call chains matmuls on the device (8 of 8192^2 on a GPU, one of
  3072^2 on a CPU) and brings back one number: the time is the device's, not a host copy's."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.experimental.enable_tensor_float_32_execution(tf32)
  size, chain = (8192, 8) if tf.config.list_physical_devices('GPU') else (3072, 1)
  a = tf.random.normal([size, size], stddev=size**-0.5)

  @tf.function
  def chained():
    x = a
    for _ in range(chain):
      x = tf.matmul(x, a)
    return x[0, 0]

  chained().numpy()
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    chained().numpy()
    best = min(best, time.perf_counter() - start)
  return 2 * chain * size**3 / best


def _forward_flops(fn, *args):
  """FLOPs of one call of tf.function `fn`, from TF's graph profiler."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  graph = fn.get_concrete_function(*args).graph
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options['output'] = 'none'
  return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def run_row(name, batch_size, warmup, steps, steps_per_loop=0):
  """Measures one row in this process; returns a dict of figures."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from configs import RunConfig, make_hparams  # pylint: disable=g-import-not-at-top
  from configs.spec import DatasetSpec  # pylint: disable=g-import-not-at-top
  from models import build_model  # pylint: disable=g-import-not-at-top
  from runner.devices import compute_options, set_precision, use_xla  # pylint: disable=g-import-not-at-top
  from runner.train_step import make_optimizer, make_train_step  # pylint: disable=g-import-not-at-top

  model_name, shape, overrides, settings = ROWS[name]
  steps_per_loop = steps_per_loop or (10 if tf.config.list_physical_devices('GPU') else 1)
  precision = settings.get('mixed_precision', 'none')
  spec = DatasetSpec(*shape)
  images = tf.random.uniform([batch_size, spec.height, spec.width, spec.depth])
  labels = tf.random.uniform([batch_size], 0, spec.num_classes, tf.int32)
  batch = {'images': images, 'labels': tf.one_hot(labels, spec.num_classes),
           'recons_image': images, 'recons_label': labels}
  if spec.num_targets == 2:
    spare = (labels + 1) % spec.num_classes
    batch.update(labels=batch['labels'] + tf.one_hot(spare, spec.num_classes),
                 spare_image=images, spare_label=spare)
  if model_name == 'reference':
    set_precision(precision)
    from benchmarks.reference_capsnet import ReferenceCapsNet, make_train_step as ref_step  # pylint: disable=g-import-not-at-top
    model = ReferenceCapsNet()
    optimizer = keras.optimizers.Adam(1e-3)
    step_fn = ref_step(model, optimizer)
    train = lambda: step_fn(images, batch['labels']).numpy()
    forward = tf.function(lambda x, y: model(x, y))
    flops_args = (images, batch['labels'])
  else:
    hparams = make_hparams('mnist', overrides)
    config = RunConfig(hparams=hparams, model=model_name, dataset=spec.name,
                       num_targets=spec.num_targets, **settings)
    set_precision(precision, tf32=config.use_tf32)
    model = build_model(model_name, hparams, spec, compute_options(config))
    step = tf.Variable(0, dtype=tf.int64)
    optimizer = make_optimizer(hparams, step, precision)
    strategy = tf.distribute.get_strategy()
    train_steps = make_train_step(model, optimizer, strategy, step, config,
                                  whole_step_xla=name in WHOLE_STEP_ROWS)
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    num_steps = tf.constant(steps_per_loop)
    train = lambda: float(train_steps(iterator, num_steps)['total'])
    forward = tf.function(model, jit_compile=use_xla(config.jit_compile))
    flops_args = (batch,)
  train_seconds = _timed(train, warmup, steps)
  eval_seconds = _timed(lambda: tf.nest.map_structure(
      lambda t: t.numpy(), forward(*flops_args)), warmup, steps)
  forward_flops = _forward_flops(tf.function(lambda *a: model(*a)), *flops_args)
  memory = (tf.config.experimental.get_memory_info('GPU:0')['peak']
            if tf.config.list_physical_devices('GPU')
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
  if model_name != 'reference':
    train_seconds /= steps_per_loop
  return {'row': name, 'train_images_per_s': batch_size / train_seconds,
          'eval_images_per_s': batch_size / eval_seconds,
          'train_gflop_per_image': 3 * forward_flops / batch_size / 1e9,
          'peak_memory_mb': memory / 2**20,
          'tf32': tf.config.experimental.tensor_float_32_execution_enabled()}


def pipeline_rates(shapes, batch_size):
  """Input-pipeline images/s for each dataset shape, on files written to a temporary dir."""
  import tempfile  # pylint: disable=g-import-not-at-top
  from benchmarks import input_pipeline  # pylint: disable=g-import-not-at-top
  needed = {PIPELINES[shape] for shape in shapes}
  with tempfile.TemporaryDirectory() as workdir:
    rows = {}
    for source in input_pipeline.ROW_SOURCES:  # only until the rows asked for exist
      if not needed <= rows.keys():
        rows.update(source(workdir, batch_size))
    return {shape: input_pipeline.images_per_second(rows[PIPELINES[shape]](), 50)
            for shape in set(shapes)}


OUT_OF_MEMORY = 'out of memory'
# What TensorFlow, CUDA, cuBLAS and cuDNN (or XLA's allocator) say when a batch does not fit.
OUT_OF_MEMORY_MESSAGES = ('ResourceExhaustedError', 'OOM when allocating', 'out of memory',
                          'CUDA_ERROR_OUT_OF_MEMORY', 'CUBLAS_STATUS_ALLOC_FAILED',
                          'CUDNN_STATUS_ALLOC_FAILED', 'Failed to allocate')


def _run_in_subprocess(name, batch_size):
  """One row in a fresh process; returns its figures, or a line saying why it failed (starting
  with OUT_OF_MEMORY when the batch did not fit, or the kernel's OOM killer ended it)."""
  command = [sys.executable, '-m', 'benchmarks.throughput', f'--row={name}',
             f'--batch_size={batch_size}', f'--steps={FLAGS.steps}',
             f'--warmup={FLAGS.warmup}', f'--steps_per_loop={FLAGS.steps_per_loop}']
  done = subprocess.run(command, capture_output=True, text=True, check=False)
  if done.returncode:
    last = (done.stderr.strip().splitlines() or ['no output'])[-1]
    if done.returncode == -9 or any(m in done.stderr for m in OUT_OF_MEMORY_MESSAGES):
      return f'{OUT_OF_MEMORY}: {last}'
    return last
  return json.loads(done.stdout.strip().splitlines()[-1])


def largest_batch(name, start, limit, run=_run_in_subprocess):
  """(batch, figures) of the largest batch, doubling from `start` up to `limit`, that runs.

  Stops at the first out-of-memory failure; another failure is returned as (batch, message).
  Returns None when not even 2 * start fits.
  """
  best, batch = None, 2 * start
  while batch <= limit:
    result = run(name, batch)
    if not isinstance(result, dict):
      return best if result.startswith(OUT_OF_MEMORY) else (batch, result)
    best, batch = (batch, result), 2 * batch
  return best


def _roofline(row, peaks):
  """Training FLOP/s of a row as a fraction of the peak matmul FLOP/s with its TF32 setting."""
  return row['train_images_per_s'] * row['train_gflop_per_image'] * 1e9 / peaks[row['tf32']]


def _summarise(rounds, names):
  """Per row: medians over rounds; `ratio` is the median of same-round ratios to the first row."""
  summary = {}
  for name in names:
    rows = [r[name] for r in rounds if isinstance(r.get(name), dict)]
    if not rows:
      summary[name] = next(r[name] for r in rounds)  # the error text
      continue
    rates = [row['train_images_per_s'] for row in rows]
    ratios = [r[name]['train_images_per_s'] / r[names[0]]['train_images_per_s']
              for r in rounds if isinstance(r.get(name), dict)
              and isinstance(r.get(names[0]), dict)]
    summary[name] = {**rows[0], 'train_images_per_s': statistics.median(rates),
                     'train_min': min(rates), 'train_max': max(rates),
                     'eval_images_per_s': statistics.median(r['eval_images_per_s'] for r in rows),
                     'peak_memory_mb': max(r['peak_memory_mb'] for r in rows),
                     'ratio': statistics.median(ratios) if ratios else float('nan')}
  return summary


def main(argv):
  del argv
  if FLAGS.row:
    print(json.dumps(run_row(FLAGS.row, FLAGS.batch_size, FLAGS.warmup, FLAGS.steps,
                             FLAGS.steps_per_loop)))
    return
  # Flag mistakes are refused before TensorFlow starts (seconds).
  names = FLAGS.rows.split(',') if FLAGS.rows else []
  largest = FLAGS.largest_rows.split(',') if FLAGS.largest_rows else []
  unknown = [n for n in dict.fromkeys(names + largest) if n not in ROWS]
  if unknown:
    fail(f'unknown row(s) {", ".join(unknown)}; expected some of {", ".join(ROWS)}')
  if FLAGS.repeats < 1:
    fail(f'--repeats must be at least 1, got {FLAGS.repeats}')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpu = bool(tf.config.list_physical_devices('GPU'))
  names = names or (GPU_ROWS if gpu else CPU_ROWS)
  largest = largest or names
  peak = peak_matmul_flops()
  peaks = {False: peak, True: peak_matmul_flops(tf32=True) if gpu else peak}
  inputs = pipeline_rates([ROWS[n][1] for n in names], FLAGS.batch_size)
  rounds = []
  for i in range(FLAGS.repeats):  # interleaved, so that a slow spell of the machine hits all rows
    rounds.append({})
    for name in names:
      rounds[-1][name] = _run_in_subprocess(name, FLAGS.batch_size)
      print(f'round {i + 1}/{FLAGS.repeats} {name}: '
            + (f'{rounds[-1][name]["train_images_per_s"]:.1f} train img/s'
               if isinstance(rounds[-1][name], dict) else 'failed'), file=sys.stderr, flush=True)
  device = tf.config.list_physical_devices('GPU')[0].name if gpu else 'CPU'
  tf32 = f' (TF32: {peaks[True] / 1e9:.0f})' if gpu else ''
  print(f'device: {device}; peak float32 matmul: {peak / 1e9:.0f} GFLOP/s{tf32}; '
        f'batch {FLAGS.batch_size}; median of {FLAGS.repeats} interleaved round(s)')
  print(f'{"row":18s} {"train img/s":>11s} {"min-max":>13s} {"ratio":>6s} {"eval img/s":>10s} '
        f'{"GFLOP/img":>9s} {"roofline":>8s} {"peak MB":>8s} {"input img/s":>11s}')
  for name, row in _summarise(rounds, names).items():
    if not isinstance(row, dict):
      print(f'{name:18s} failed: {row}')
      continue
    spread = f'{row["train_min"]:.1f}-{row["train_max"]:.1f}'
    print(f'{name:18s} {row["train_images_per_s"]:11.1f} {spread:>13s} {row["ratio"]:6.2f} '
          f'{row["eval_images_per_s"]:10.1f} {row["train_gflop_per_image"]:9.2f} '
          f'{_roofline(row, peaks):8.0%} {row["peak_memory_mb"]:8.0f} '
          f'{inputs[ROWS[name][1]]:11.0f}',
          flush=True)
  if FLAGS.max_batch > FLAGS.batch_size:
    print(f'\nlargest batch that fits (doubling from {FLAGS.batch_size}, up to {FLAGS.max_batch}):')
    print(f'{"row":18s} {"batch":>7s} {"train img/s":>11s} {"eval img/s":>10s} {"roofline":>8s} '
          f'{"peak MB":>8s}')
    for name in largest:
      found = largest_batch(name, FLAGS.batch_size, FLAGS.max_batch)
      if found is None:
        print(f'{name:18s} no batch above {FLAGS.batch_size} fits')
      elif not isinstance(found[1], dict):
        print(f'{name:18s} {found[0]:7d} failed: {found[1]}')
      else:
        batch, row = found
        print(f'{name:18s} {batch:7d} {row["train_images_per_s"]:11.1f} '
              f'{row["eval_images_per_s"]:10.1f} {_roofline(row, peaks):8.0%} '
              f'{row["peak_memory_mb"]:8.0f}',
              flush=True)


if __name__ == '__main__':
  atexit.register(gc.freeze)  # no collection of TensorFlow's objects at exit (experiment.py)
  app.run(main, flags_parser=parse_flags)
