"""The device check: what this project does on a GPU machine, in one command and one folder.

  python -m benchmarks.gpu_check --out=gpu_check          # a GPU machine: at most --minutes=8
  python -m benchmarks.gpu_check --out=DIR --allow_cpu    # every section on the CPU, small sizes

Writes DIR/report.md: devices (TensorFlow, its CUDA and cuDNN, the GPUs and their memory), the
oracle checks (the original checkpoint's logits, loss and gradients in float32 with TF32 off and
on, with and without XLA, and in bfloat16 and float16, each against a stated tolerance), the
quickstart's first steps, --num_gpus over every visible GPU, and throughput rows at batch 128 and
at the largest batch that fits (images/s, peak memory, fraction of the device's peak). Each
section runs in its own process under a share of --minutes (its output in DIR/NAME.log); the
report says which did not finish. Without a GPU (and without --allow_cpu) it stops at once.
"""

import atexit
import datetime
import gc
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

from absl import app, flags

from configs.errors import fail, parse_flags
from configs.machine import GPU_INSTALL, has_nvidia_driver

flags.DEFINE_string('out', '', 'Folder for report.md and each section\'s log.')
flags.DEFINE_boolean('allow_cpu', False, 'Run every section on the CPU when there is no GPU '
                     '(small sizes): how the test suite runs it.')
flags.DEFINE_float('minutes', 8, 'Time for all sections together; each gets a fixed share.')
flags.DEFINE_integer('quickstart_steps', 0, 'Quickstart steps (0: 200 on GPUs, 20 on the CPU).')
flags.DEFINE_integer('steps', 0, 'Steps of the all-GPUs run and timed steps of each throughput '
                     'row (0: 20 and 4 on GPUs, 3 and 1 on the CPU).')
flags.DEFINE_string('rows', 'capsule_no_xla,capsule,capsule_bf16,capsule_xla_step',
                    'Throughput rows at --batch_size (benchmarks/throughput.py).')
flags.DEFINE_integer('batch_size', 0, 'Throughput batch (0: 128 on GPUs, 4 on the CPU).')
flags.DEFINE_integer('max_batch', 0, 'Largest batch to try for the default row (capsule), '
                     'doubling from --batch_size (0: 8192 on GPUs, 8 on the CPU).')
flags.DEFINE_string('section', '', 'Internal: run this section here and print its Markdown.')
FLAGS = flags.FLAGS

ROOT = pathlib.Path(__file__).resolve().parent.parent
ORACLE_DIR = ROOT / 'tests' / 'testdata' / 'a_valid_routing3'
ORACLE_OVERRIDES = 'num_prime_capsules=2,remake=false'
# Each section's share of --minutes.
SHARES = {'devices': 0.08, 'oracle': 0.16, 'quickstart': 0.16, 'all_gpus': 0.12,
          'throughput': 0.48}
TITLES = {'devices': 'Devices', 'oracle': 'Oracle checks', 'quickstart': 'Quickstart',
          'all_gpus': 'All GPUs (--num_gpus)', 'throughput': 'Throughput'}
# name, --mixed_precision, TF32, XLA, tolerance of logits and loss, of gradients: the largest
# |ours - original| over the largest |original|. TF32 rounds inputs and weights to 10-bit
# mantissas (2^-11 = 5e-4 each), bfloat16 to 8 bits, float16 to 10 bits and 5 exponent bits
# (its gradients with training's first loss scale, 2^15).
ORACLE_CHECKS = (
    ('float32, TF32 off', 'none', False, False, 1e-5, 1e-4),
    ('float32, TF32 off, XLA', 'none', False, True, 1e-5, 1e-4),
    ('float32, TF32 on', 'none', True, False, 2e-3, 2e-2),
    ('float32, TF32 on, XLA', 'none', True, True, 2e-3, 2e-2),
    ('bfloat16', 'bfloat16', True, False, 3e-2, 1e-1),
    ('float16', 'float16', True, False, 5e-3, 1e-1),
)


def devices_section():
  """TensorFlow's version and build, each GPU it sees, and nvidia-smi's view of their memory."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  build = tf.sysconfig.get_build_info()
  gpus = tf.config.list_physical_devices('GPU')
  lines = [f'- TensorFlow {tf.__version__}, built with CUDA {build.get("cuda_version", "none")}, '
           f'cuDNN {build.get("cudnn_version", "none")}',
           f'- GPUs visible to TensorFlow: {len(gpus)}']
  for gpu in gpus:
    details = tf.config.experimental.get_device_details(gpu)
    lines.append(f'  - {gpu.name}: {details.get("device_name")}, compute capability '
                 f'{details.get("compute_capability")}')
  if shutil.which('nvidia-smi'):
    query = subprocess.run(['nvidia-smi', '--query-gpu=index,name,memory.total,memory.used,'
                            'driver_version', '--format=csv'], capture_output=True, text=True,
                           timeout=30, check=False)
    lines += ['', '```', query.stdout.strip() or query.stderr.strip(), '```']
  else:
    lines.append('- nvidia-smi: not found (no NVIDIA driver)')
  return '\n'.join(lines)


def oracle_diffs(precision, tf32, xla):
  """Largest |ours - original| / largest |original| of the original checkpoint's logits, loss
  and gradients (tests/testdata/a_valid_routing3) under these numerics."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from configs import RunConfig, make_hparams  # pylint: disable=g-import-not-at-top
  from configs.spec import DatasetSpec  # pylint: disable=g-import-not-at-top
  from layers import model_losses  # pylint: disable=g-import-not-at-top
  from models import build_model, import_tf1_checkpoint  # pylint: disable=g-import-not-at-top
  from models.tf1_import import original_variables  # pylint: disable=g-import-not-at-top
  from runner.devices import compute_options, set_precision  # pylint: disable=g-import-not-at-top
  oracle = np.load(ORACLE_DIR / 'io.npz')
  set_precision(precision, tf32=tf32)
  config = RunConfig(jit_compile=xla, hparams=make_hparams('mnist', ORACLE_OVERRIDES))
  model = build_model('capsule', config.hparams, DatasetSpec('mnist', 28, 28, 1, 10),
                      compute_options(config))
  import_tf1_checkpoint(str(ORACLE_DIR / 'model.ckpt-0'), model)
  variables = original_variables(model)
  images = tf.constant(oracle['input_images'].reshape(-1, 28, 28, 1))
  batch = {'images': images, 'recons_image': images,
           'labels': tf.constant(oracle['input_labels'], tf.float32),
           'recons_label': tf.constant(oracle['input_recons_label'], tf.int32)}

  scale = 2.0**15 if precision == 'float16' else 1.0  # training's first loss scale

  @tf.function(jit_compile=xla)
  def forward_backward():
    with tf.GradientTape() as tape:
      outputs = model(batch)
      loss = model_losses(batch, outputs, 'margin')['total']
      scaled = loss * scale
    grads = tape.gradient(scaled, list(variables.values()))
    return outputs['logits'], loss, [g / scale for g in grads]

  logits, loss, grads = forward_backward()

  def relative(got, expected):
    got = np.asarray(got, np.float32).reshape(expected.shape)
    return float(np.abs(got - expected).max() / np.abs(expected).max())

  return (relative(logits, oracle['expected_logits']),
          relative(loss, oracle['expected_total_loss']),
          max(relative(g, oracle[f'grad:{n}']) for n, g in zip(variables, grads)))


def oracle_section():
  """A Markdown table: each ORACLE_CHECKS line, its differences, tolerances and PASS or FAIL."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpu = bool(tf.config.list_physical_devices('GPU'))
  lines = ['| numerics | logits | loss | gradients | tolerance (logits, loss / gradients) | '
           'result |', '| --- | ---: | ---: | ---: | ---: | --- |']
  diffs = {}
  for name, precision, tf32, xla, tolerance, grad_tolerance in ORACLE_CHECKS:
    key = (precision, tf32 and gpu, xla)  # CPUs have no TF32: the same computation
    if key not in diffs:
      diffs[key] = oracle_diffs(precision, tf32, xla)
    logits, loss, grads = diffs[key]
    passed = max(logits, loss) <= tolerance and grads <= grad_tolerance
    lines.append(f'| {name} | {logits:.1e} | {loss:.1e} | {grads:.1e} | {tolerance:.0e} / '
                 f'{grad_tolerance:.0e} | {"PASS" if passed else "FAIL"} |')
    print(lines[-1], file=sys.stderr, flush=True)  # the log keeps what finished
  if not gpu:
    lines.append('\nNo GPU: TF32 changes nothing on CPUs, so its lines repeat the TF32-off ones.')
  return '\n'.join(lines)


def _run(command, timeout, log):
  """Runs `command` in the checkout under `timeout` seconds, stderr into `log`; (status, stdout).
  A section that runs out of time is killed with every process it started."""
  with open(log, 'w') as stderr:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                               cwd=ROOT, start_new_session=True)
    try:
      out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
      os.killpg(process.pid, signal.SIGKILL)
      out, _ = process.communicate()
      return f'did not finish in {timeout:.0f} s', out
  return ('done' if process.returncode == 0 else f'failed (exit {process.returncode})'), out


def _step_lines(log):
  """The training progress lines a section's experiment.py run logged, in a code block."""
  steps = [line.split('] ', 1)[-1] for line in pathlib.Path(log).read_text().splitlines()
           if re.search(r'\] step \d+/\d+', line)]
  return '```\n' + '\n'.join(steps or ['no step finished']) + '\n```'


class Sizes:
  """The sections' sizes: full on GPUs, small on the CPU (--allow_cpu)."""

  def __init__(self, gpus):
    self.gpus = gpus
    self.quickstart_steps = FLAGS.quickstart_steps or (200 if gpus else 20)
    self.steps = FLAGS.steps or (20 if gpus else 3)
    self.row_steps = FLAGS.steps or (4 if gpus else 1)
    self.batch = FLAGS.batch_size or (128 if gpus else 4)
    self.max_batch = FLAGS.max_batch or (8192 if gpus else 8)


def _commands(out, sizes):
  """Section name -> (command, how it runs on this machine)."""
  python = sys.executable
  cpu = [] if sizes.gpus else ['--allow_cpu']
  quickstart = [python, 'experiment.py', '--preset=quickstart', '--data_dir=builtin',
                '--batch_size=64', '--seed=1', *cpu]
  devices = (f'--num_gpus={sizes.gpus}' if sizes.gpus else '--cpu_replicas=2')
  return {
      'devices': ([python, '-m', 'benchmarks.gpu_check', '--section=devices'], ''),
      'oracle': ([python, '-m', 'benchmarks.gpu_check', '--section=oracle'], ''),
      'quickstart': (quickstart + [f'--max_steps={sizes.quickstart_steps}',
                                   f'--log_every={max(sizes.quickstart_steps // 10, 1)}',
                                   f'--summary_dir={out}/quickstart'],
                     f'the README quickstart\'s first {sizes.quickstart_steps} steps'),
      'all_gpus': (quickstart + [devices, f'--batch_size={64 * sizes.gpus or 16}',
                                 f'--max_steps={sizes.steps}', '--log_every=1',
                                 f'--summary_dir={out}/all_gpus'],
                   f'{devices}, {sizes.steps} steps' + ('' if sizes.gpus else
                                                       ' (no GPU: 2 logical CPU devices)')),
      'throughput': ([python, '-m', 'benchmarks.throughput', f'--rows={FLAGS.rows}',
                      f'--batch_size={sizes.batch}', f'--steps={sizes.row_steps}', '--warmup=1',
                      f'--max_batch={sizes.max_batch}', '--largest_rows=capsule'],
                     f'batch {sizes.batch}, then the largest batch of the default row'),
  }


def _body(name, out, log):
  if name in ('quickstart', 'all_gpus'):
    return _step_lines(log)
  if name == 'throughput':
    return f'```\n{out.strip()}\n```'
  return out.strip()


def run_sections(out_dir, allow_cpu):
  """Runs every section, writing report.md as it goes; returns (report path, GPUs seen)."""
  budget = FLAGS.minutes * 60
  report = [f'# Device check, {datetime.datetime.now():%Y-%m-%d %H:%M}', '']
  sections, unfinished, sizes = [], [], None
  for name, share in SHARES.items():
    commands = _commands(out_dir, sizes or Sizes(0))
    command, what = commands[name]
    start = time.monotonic()
    status, out = _run(command, share * budget, out_dir / f'{name}.log')
    seconds = time.monotonic() - start
    if name == 'devices':
      found = re.search(r'GPUs visible to TensorFlow: (\d+)', out)
      sizes = Sizes(int(found.group(1)) if found else 0)
      if not sizes.gpus and not allow_cpu:
        return None, out
    if status != 'done':
      unfinished.append(TITLES[name])
    sections += [f'## {TITLES[name]}', '', f'*{status}, {seconds:.0f} s*'
                 + (f'; {what}' if what else ''), '', _body(name, out, out_dir / f'{name}.log'),
                 '']
    print(f'{TITLES[name]}: {status} ({seconds:.0f} s)', file=sys.stderr, flush=True)
  report.append('Did not finish: ' + (', '.join(unfinished) if unfinished else 'none') + '.')
  report.append('' if sizes.gpus else 'No GPU: every section ran on the CPU at small sizes '
                '(--allow_cpu).')
  path = out_dir / 'report.md'
  path.write_text('\n'.join(report + [''] + sections))
  return path, sizes.gpus


def main(argv):
  del argv
  if FLAGS.section:
    print({'devices': devices_section, 'oracle': oracle_section}[FLAGS.section]())
    return
  if not FLAGS.out:
    fail('--out=DIR is required (report.md and the logs are written there)')
  if not FLAGS.allow_cpu and not has_nvidia_driver():
    fail('no GPU here (no NVIDIA driver: no nvidia-smi, no /proc/driver/nvidia); '
         'pass --allow_cpu to run every section on the CPU')
  out_dir = pathlib.Path(FLAGS.out)
  out_dir.mkdir(parents=True, exist_ok=True)
  path, gpus = run_sections(out_dir, FLAGS.allow_cpu)
  if path is None:
    fail(f'this machine has an NVIDIA driver but TensorFlow sees no GPU (see '
         f'{out_dir}/devices.log): {GPU_INSTALL} (or --allow_cpu)')
  print(f'{path} ({gpus} GPU(s))')


if __name__ == '__main__':
  atexit.register(gc.freeze)  # no collection of TensorFlow's objects at exit (experiment.py)
  app.run(main, flags_parser=parse_flags)
