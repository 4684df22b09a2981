"""benchmarks.gpu_check, the device check a GPU machine runs once: on this CPU with --allow_cpu."""

import re
import sys

import pytest

from configs.machine import has_nvidia_driver
from tests import cli
from tests.test_devices import fake_nvidia_driver


@pytest.fixture(scope='module')
def checked(tmp_path_factory):
  """Every section at the smallest sizes, on a machine whose NVIDIA driver is faked (a stub
  nvidia-smi) and whose TensorFlow sees no GPU: (report.md's text, the output folder). The
  largest-batch search is left out (tests/test_performance.py tests it): its own processes."""
  out = tmp_path_factory.mktemp('gpu_check')
  done = cli.run_command(
      [sys.executable, '-m', 'benchmarks.gpu_check', '--allow_cpu', f'--out={out}',
       '--quickstart_steps=2', '--steps=2', '--rows=capsule_no_xla', '--batch_size=2',
       '--max_batch=2'], env=fake_nvidia_driver(tmp_path_factory.mktemp('bin')), check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return (out / 'report.md').read_text(), out


def _section(report, title):
  return report.split(f'## {title}\n')[1].split('\n## ')[0]


def test_device_check_reports_every_section_finished(checked):
  report, _ = checked
  assert 'Did not finish: none.' in report
  for title in ('Devices', 'Oracle checks', 'Quickstart', 'All GPUs (--num_gpus)', 'Throughput'):
    assert re.match(r'\n\*done, \d+ s\*', _section(report, title)), title
  assert 'GPUs visible to TensorFlow: 0' in _section(report, 'Devices')
  assert 'nvidia-smi: a stub, no GPU' in _section(report, 'Devices')
  assert 'step 2/2  loss' in _section(report, 'Quickstart')  # --allow_cpu goes on
  assert '--cpu_replicas=2, 2 steps' in _section(report, 'All GPUs (--num_gpus)')


def test_device_check_compares_each_numerics_with_the_original_within_its_tolerance(checked):
  number = r'([\d.e+-]+)'
  rows = re.findall(rf'\| ([\w ,]+) \| {number} \| {number} \| {number} \| {number} / '
                    rf'{number} \| (PASS|FAIL) \|', _section(checked[0], 'Oracle checks'))
  assert [r[0] for r in rows] == ['float32, TF32 off', 'float32, TF32 off, XLA',
                                  'float32, TF32 on', 'float32, TF32 on, XLA', 'bfloat16',
                                  'float16']
  for name, *figures, result in rows:
    logits, loss, grads, tolerance, grad_tolerance = map(float, figures)
    passed = max(logits, loss) <= tolerance and grads <= grad_tolerance
    assert result == ('PASS' if passed else 'FAIL') == 'PASS', name
  assert float(rows[0][1]) <= 1e-5  # float32 without TF32: the original's numbers


def test_device_check_measures_rows_in_their_own_processes(checked):
  report, out = checked
  throughput = _section(report, 'Throughput')
  rate = float(re.search(r'round 1/1 capsule_no_xla: ([\d.]+) train img/s',
                         (out / 'throughput.log').read_text()).group(1))
  assert re.search(r'peak float32 matmul: \d+ GFLOP/s; batch 2; median of 1', throughput)
  row = next(line.split() for line in throughput.splitlines()
             if line.startswith('capsule_no_xla '))
  median, spread, ratio, _, gflop, roofline, _, input_rate = row[1:]
  assert float(median) == rate and spread == f'{rate:.1f}-{rate:.1f}' and ratio == '1.00'
  assert abs(float(gflop) - 1.21) < 0.02  # the model's FLOPs, from TF's graph profiler
  assert roofline.endswith('%') and float(input_rate) > 0


@pytest.mark.skipif(has_nvidia_driver(), reason='this machine has an NVIDIA driver')
def test_device_check_without_a_gpu_stops_at_once_with_one_line(tmp_path):
  done = cli.run_module('benchmarks.gpu_check', f'--out={tmp_path}', timeout=60)
  assert done.returncode != 0
  assert done.stderr.strip().splitlines()[-1].startswith('error: no GPU here (no NVIDIA driver')
  assert 'Traceback' not in done.stderr and not list(tmp_path.iterdir())
