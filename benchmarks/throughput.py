"""Training, evaluation and input images/s of every model configuration, side by side.

  python -m benchmarks.throughput                 # all rows for this machine, batch 128
  python -m benchmarks.throughput --rows=reference,capsule --steps=10 --repeats=5
  python -m benchmarks.throughput --max_batch=16384   # GPUs: also the largest batch that fits

Each row runs in its own process (clean memory peak, its own precision policy). Ratios are
against the first row, measured in the same run; with --repeats the rows run in interleaved
rounds and the table gives medians (the ratio is the median of the ratios within each round,
as shared machines drift by 20% from one minute to the next). `roofline` is training images/s
over (peak float32 matmul FLOP/s / training FLOPs per image); `input img/s` is the row's input
pipeline alone (benchmarks/input_pipeline.py), which must stay far above the training rate.
"""

import json
import resource
import statistics
import subprocess
import sys
import time

from absl import app, flags

from configs.hparams import CIFAR10_OVERRIDES

flags.DEFINE_string('rows', '', 'Comma-separated rows to run (default: all for this device).')
flags.DEFINE_integer('batch_size', 128, 'Global batch size.')
flags.DEFINE_integer('steps', 6, 'Timed steps per row (after warm-up).')
flags.DEFINE_integer('warmup', 2, 'Untimed steps per row (tracing, compilation, caches).')
flags.DEFINE_integer('steps_per_loop', 1, 'Training steps per compiled call (our rows).')
flags.DEFINE_integer('repeats', 1, 'Interleaved rounds over all rows; the table shows medians.')
flags.DEFINE_integer('max_batch', 0, 'If above --batch_size: also find, per row, the largest batch '
                     '(doubling from --batch_size up to this) that fits in memory, and its rates. '
                     'Meant for GPUs.')
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
    'multimnist': ('capsule', MULTIMNIST, '', {}),
    'cifar10': ('capsule', CIFAR10, CIFAR10_OVERRIDES, {}),
    'baseline': ('baseline', MNIST, '', {}),
    'capsule_bf16': ('capsule', MNIST, '', {'mixed_precision': 'bfloat16'}),
    'capsule_xla_bf16': ('capsule', MNIST, '', {'jit_compile': True,
                                                'mixed_precision': 'bfloat16'}),
}
CPU_ROWS = ['reference', 'capsule', 'capsule_tf_conv', 'capsule_xla', 'capsule_bf16', 'multimnist',
            'cifar10', 'baseline']


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


def peak_matmul_flops(size=3072, repeats=10):
  """This device's float32 matmul rate, FLOP/s: the best of `repeats` (a peak, not a typical)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  a = tf.random.normal([size, size])
  matmul = tf.function(lambda: tf.matmul(a, a))
  matmul().numpy()
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    matmul().numpy()
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 / best


def _forward_flops(fn, *args):
  """FLOPs of one call of tf.function `fn`, from TF's graph profiler."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  graph = fn.get_concrete_function(*args).graph
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options['output'] = 'none'
  return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def run_row(name, batch_size, warmup, steps, steps_per_loop=1):
  """Measures one row in this process; returns a dict of figures."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from configs import RunConfig, make_hparams  # pylint: disable=g-import-not-at-top
  from configs.spec import DatasetSpec  # pylint: disable=g-import-not-at-top
  from models import build_model  # pylint: disable=g-import-not-at-top
  from runner.devices import compute_options, set_precision, use_xla  # pylint: disable=g-import-not-at-top
  from runner.training import make_optimizer, make_train_step  # pylint: disable=g-import-not-at-top

  model_name, shape, overrides, settings = ROWS[name]
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
  set_precision(precision)
  if model_name == 'reference':
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
    model = build_model(model_name, hparams, spec, compute_options(config))
    step = tf.Variable(0, dtype=tf.int64)
    optimizer = make_optimizer(hparams, step, precision)
    strategy = tf.distribute.get_strategy()
    train_steps = make_train_step(model, optimizer, strategy, step, config)
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
          'peak_memory_mb': memory / 2**20}


def pipeline_rates(shapes, batch_size):
  """Input-pipeline images/s for each dataset shape, on files written to a temporary dir."""
  import tempfile  # pylint: disable=g-import-not-at-top
  from benchmarks import input_pipeline  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as workdir:
    rows = {}
    for source in input_pipeline.ROW_SOURCES:
      rows.update(source(workdir, batch_size))
    return {shape: input_pipeline.images_per_second(rows[PIPELINES[shape]](), 50)
            for shape in set(shapes)}


OUT_OF_MEMORY = 'out of memory'


def _run_in_subprocess(name, batch_size):
  """One row in a fresh process; returns its figures, or a line saying why it failed."""
  command = [sys.executable, '-m', 'benchmarks.throughput', f'--row={name}',
             f'--batch_size={batch_size}', f'--steps={FLAGS.steps}',
             f'--warmup={FLAGS.warmup}', f'--steps_per_loop={FLAGS.steps_per_loop}']
  done = subprocess.run(command, capture_output=True, text=True, check=False)
  if done.returncode:
    last = (done.stderr.strip().splitlines() or ['no output'])[-1]
    if any(m in done.stderr for m in ('ResourceExhaustedError', 'OOM when allocating',
                                      'out of memory')):
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


def _roofline(row, peak):
  """Training FLOP/s of a row as a fraction of the peak matmul FLOP/s."""
  return row['train_images_per_s'] * row['train_gflop_per_image'] * 1e9 / peak


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
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpu = bool(tf.config.list_physical_devices('GPU'))
  names = FLAGS.rows.split(',') if FLAGS.rows else (list(ROWS) if gpu else CPU_ROWS)
  unknown = [n for n in names if n not in ROWS]
  if unknown:
    sys.exit(f'error: unknown row(s) {", ".join(unknown)}; expected some of {", ".join(ROWS)}')
  if FLAGS.repeats < 1:
    sys.exit(f'error: --repeats must be at least 1, got {FLAGS.repeats}')
  peak = peak_matmul_flops()
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
  print(f'device: {device}; peak float32 matmul: {peak / 1e9:.0f} GFLOP/s; '
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
          f'{_roofline(row, peak):8.0%} {row["peak_memory_mb"]:8.0f} '
          f'{inputs[ROWS[name][1]]:11.0f}',
          flush=True)
  if FLAGS.max_batch > FLAGS.batch_size:
    print(f'\nlargest batch that fits (doubling from {FLAGS.batch_size}, up to {FLAGS.max_batch}):')
    print(f'{"row":18s} {"batch":>7s} {"train img/s":>11s} {"eval img/s":>10s} {"roofline":>8s} '
          f'{"peak MB":>8s}')
    for name in names:
      found = largest_batch(name, FLAGS.batch_size, FLAGS.max_batch)
      if found is None:
        print(f'{name:18s} no batch above {FLAGS.batch_size} fits')
      elif not isinstance(found[1], dict):
        print(f'{name:18s} {found[0]:7d} failed: {found[1]}')
      else:
        batch, row = found
        print(f'{name:18s} {batch:7d} {row["train_images_per_s"]:11.1f} '
              f'{row["eval_images_per_s"]:10.1f} {_roofline(row, peak):8.0%} '
              f'{row["peak_memory_mb"]:8.0f}',
              flush=True)


if __name__ == '__main__':
  app.run(main)
