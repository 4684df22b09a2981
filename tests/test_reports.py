"""reports.compare and reports.plot on tiny run directories written here (no model trained)."""

import csv
import sys

import numpy as np
import pytest
import tensorflow as tf

from configs import HParams, RunConfig
from reports import compare, plot, runs
from tests import cli

TOTAL = 10000
HEADER = ['run', 'batch_size', 'routing', 'last step', 'best error (%)', 'best step',
          'final error (%)', 'final step', 'evaluations', 'ensemble error (%)', 'notes']
# By hand from the events below: error = 100 * wrong / TOTAL; best is the first lowest.
ROWS = {
    'routing1': ['routing1', '128', '1', '300', '0.90', '200', '1.20', '300', '3', '', ''],
    'routing3': ['routing3', '128', '3', '400', '0.60', '200', '0.60', '300', '3', '', ''],
    'no_test': ['no_test', '64', '3', '50', '', '', '', '', '', '', 'no test events'],
    'no_config': ['no_config', '', '', '', '2.50', '100', '2.50', '100', '1', '0.45',
                  'no train/run_config.json; no train events'],
}


def write_events(directory, scalars):
  """tag -> [(step, value)] written as tf.summary.scalar, as the runner writes them."""
  writer = tf.summary.create_file_writer(str(directory))
  with writer.as_default():
    for tag, points in scalars.items():
      for step, value in points:
        tf.summary.scalar(tag, value, step=step)
  writer.close()


def write_evaluations(directory, wrong_by_step, prefix=''):
  write_events(directory, {
      prefix + 'wrong': [(s, w) for s, w in wrong_by_step],
      prefix + 'total': [(s, TOTAL) for s, _ in wrong_by_step],
      prefix + 'accuracy': [(s, (TOTAL - w) / TOTAL) for s, w in wrong_by_step]})


def later(directory, write):
  """Calls `write` and names its new event file as one from a second later (files are read
  in name order; within one second this process's writer counter decides, 9 before 10)."""
  before = set(directory.iterdir())
  write()
  latest = max(int(p.name.split('.')[3]) for p in before)
  for path in set(directory.iterdir()) - before:
    path.rename(directory / f'events.out.tfevents.{latest + 1}.later.v2')


def write_config(run_dir, **flags):
  routing = flags.pop('routing')
  config = RunConfig(hparams=HParams(routing=routing), summary_dir=str(run_dir), **flags)
  (run_dir / 'train').mkdir(parents=True, exist_ok=True)
  (run_dir / 'train' / 'run_config.json').write_text(config.to_json())


@pytest.fixture(scope='module')
def root(tmp_path_factory):
  """Four runs: routing 1 and 3 (evaluated), one never evaluated, one without a config."""
  root = tmp_path_factory.mktemp('runs')
  write_config(root / 'routing1', routing=1)
  write_events(root / 'routing1' / 'train', {
      'batch_accuracy': [(100, 0.5), (200, 0.75), (300, 0.875)], 'loss/total': [(300, 0.1)]})
  write_evaluations(root / 'routing1' / 'test', [(100, 150), (200, 90), (300, 120)])
  write_config(root / 'routing3', routing=3)
  write_events(root / 'routing3' / 'train', {'batch_accuracy': [(100, 0.25), (400, 1.0)]})
  write_evaluations(root / 'routing3' / 'test', [(100, 80), (200, 70), (300, 60)])
  # Step 200 evaluated again later: its new value counts, and step 300 is kept.
  later(root / 'routing3' / 'test', lambda: write_evaluations(root / 'routing3' / 'test',
                                                              [(200, 60)]))
  write_config(root / 'no_test', routing=3, batch_size=64)
  write_events(root / 'no_test' / 'train', {'loss/total': [(50, 0.3)]})
  write_evaluations(root / 'no_config' / 'test', [(100, 250)])
  write_evaluations(root / 'no_config' / 'test', [(0, 45)], prefix='ensemble/')
  return root


def parse_markdown(text):
  lines = text.splitlines()
  cells = [[c.strip().replace('\\|', '|') for c in line.strip()[1:-1].split(' | ')]
           for line in lines]
  return cells[0], cells[1], cells[2:]


def test_table_shows_only_differing_keys_and_errors_by_hand(root, capsys):
  order = ['routing1', 'routing3', 'no_test', 'no_config']
  compare.main([str(root / name) for name in order])
  header, rule, rows = parse_markdown(capsys.readouterr().out)
  assert header == HEADER
  assert rows == [ROWS[name] for name in order]
  assert rule[HEADER.index('run')] == '-' * len('no_config')  # padded to the longest name
  assert rule[HEADER.index('best error (%)')].endswith(':')  # numbers align right


def test_a_folder_of_runs_lists_them_all_by_name(root, capsys):
  compare.main([str(root)])
  _, _, rows = parse_markdown(capsys.readouterr().out)
  assert rows == [ROWS[name] for name in sorted(ROWS)]


def test_equal_runs_have_no_config_columns(root, capsys):
  compare.main([str(root / 'routing3'), str(root / 'routing1' / '..' / 'routing3')])
  header, _, rows = parse_markdown(capsys.readouterr().out)
  assert header == ['run', *compare.STATS]  # the same run twice is listed once
  assert rows == [['routing3', '400', '0.60', '200', '0.60', '300', '3']]
  compare.main([str(root / 'routing1'), str(root / 'no_config')])
  header, _, _ = parse_markdown(capsys.readouterr().out)
  assert 'routing' not in header  # one config: nothing differs


def test_csv_on_stdout_and_in_a_file_read_back(root, tmp_path, capsys):
  path = tmp_path / 'table.csv'
  compare.main(['--format=csv', f'--csv={path}', str(root / 'routing1'), str(root / 'no_test')])
  expected = [HEADER[:-2] + ['notes'], ROWS['routing1'][:-2] + [''],
              ROWS['no_test'][:-2] + ['no test events']]
  assert list(csv.reader(capsys.readouterr().out.splitlines())) == expected
  with open(path, newline='') as f:
    assert list(csv.reader(f)) == expected


def test_flat_config_names_hparams_and_missing_keys_differ():
  config = {'model': 'capsule', 'summary_dir': 'a', 'hparams': {'routing': 3, 'model': 'x'}}
  assert compare.flat_config(config) == {'model': 'capsule', 'hparams.model': 'x', 'routing': 3}
  assert compare.differing_keys([{'a': 1, 'b': True}, {'a': 1, 'b': 1}, {'a': 1}]) == ['b']
  assert [compare.format_value(v) for v in (True, None, 0.001, 'VALID')] == [
      'true', 'null', '0.001', 'VALID']


def test_runs_with_the_same_name_are_told_apart_by_path(tmp_path):
  for parent in ('a', 'b'):
    write_evaluations(tmp_path / parent / 'run' / 'test', [(10, 1)])
  found = runs.find_runs([str(tmp_path / 'a' / 'run'), str(tmp_path / 'b' / 'run')])
  assert [r.name for r in found] == [str(tmp_path / p / 'run') for p in ('a', 'b')]


def test_tf1_style_scalars_are_read_too(tmp_path):
  writer = tf.summary.create_file_writer(str(tmp_path))
  summary = tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag='accuracy',
                                                                   simple_value=0.25)])
  with writer.as_default():
    tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=7)
  writer.close()
  assert runs.read_scalars(str(tmp_path)) == {'accuracy': [(7, 0.25)]}


def test_a_path_that_is_no_run_is_one_error_line(tmp_path):
  (tmp_path / 'empty').mkdir()
  done = cli.run_module('reports.compare', str(tmp_path / 'empty'))
  lines = [line for line in done.stderr.splitlines() if line.startswith('error:')]
  assert done.returncode == 2 and 'Traceback' not in done.stderr, done.stderr[-2000:]
  assert lines == [f'error: {tmp_path}/empty is not a run directory: it holds no train/ or test/ '
                   'folder, nor do its subfolders; pass the --summary_dir of experiment.py runs']
  assert done.stdout == ''


def test_a_missing_path_is_named(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    compare.main([str(tmp_path / 'nowhere')])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err == (f'error: {tmp_path}/nowhere is not a directory; expected a '
                                     'run directory (the --summary_dir of experiment.py)\n')


@pytest.mark.parametrize('command, argv, message', [
    (compare.main, ['--format=html', 'runs'], "argument --format: invalid choice: 'html' (choose "
     "from 'markdown', 'csv') (python -m reports.compare --help lists the arguments)"),
    (plot.main, ['runs'], 'the following arguments are required: --output (python -m reports.plot '
     '--help lists the arguments)'),
    (compare.main, [], 'the following arguments are required: RUN_DIR (python -m '
     'reports.compare --help lists the arguments)')])
def test_an_argument_mistake_is_one_error_line(command, argv, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    command(argv)
  assert exit_info.value.code == 2
  assert capsys.readouterr().err == f'error: {message}\n'


def test_plot_writes_a_png_and_prints_its_points(root, tmp_path, capsys):
  output = tmp_path / 'plots' / 'curve.png'
  plot.main([str(root), f'--output={output}', '--train'])
  out = capsys.readouterr().out
  lines = out.splitlines()
  assert lines[:2] == [f'wrote {output}', 'note: no_test has no test evaluations; not plotted']
  header, _, rows = parse_markdown('\n'.join(lines[2:]))
  assert header == ['run', 'curve', 'step', 'accuracy (%)']
  assert rows == [
      ['no_config', 'test', '100', '97.50'],
      ['routing1', 'test', '100', '98.50'], ['routing1', 'test', '200', '99.10'],
      ['routing1', 'test', '300', '98.80'],
      ['routing1', 'train', '100', '50.00'], ['routing1', 'train', '200', '75.00'],
      ['routing1', 'train', '300', '87.50'],
      ['routing3', 'test', '100', '99.20'], ['routing3', 'test', '200', '99.40'],
      ['routing3', 'test', '300', '99.40'],
      ['routing3', 'train', '100', '25.00'], ['routing3', 'train', '400', '100.00']]
  data = output.read_bytes()
  assert len(data) > 0 and data[:8] == b'\x89PNG\r\n\x1a\n'
  image = tf.io.decode_png(data).numpy()
  assert image.shape[:2] == (plot.HEIGHT * plot.DPI, plot.WIDTH * plot.DPI)
  assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 10  # lines were drawn


def test_plot_of_errors_without_training_curves(root, tmp_path, capsys):
  plot.main([str(root / 'routing3'), f'--output={tmp_path / "e.png"}', '--metric=error'])
  header, _, rows = parse_markdown('\n'.join(capsys.readouterr().out.splitlines()[1:]))
  assert header[-1] == 'error (%)'
  assert rows == [['routing3', 'test', '100', '0.80'], ['routing3', 'test', '200', '0.60'],
                  ['routing3', 'test', '300', '0.60']]


def test_plot_with_nothing_to_plot_is_one_error_line(root, tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    plot.main([str(root / 'no_test'), f'--output={tmp_path / "x.png"}'])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err.startswith(f'error: nothing to plot: no test events in {root}')
  assert not (tmp_path / 'x.png').exists()


def test_plot_without_matplotlib_says_how_to_install_it(root, tmp_path, capsys, monkeypatch):
  monkeypatch.setitem(sys.modules, 'matplotlib.figure', None)  # import fails as if missing
  with pytest.raises(SystemExit) as exit_info:
    plot.main([str(root / 'routing1'), f'--output={tmp_path / "x.png"}'])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err == (
      "error: reports.plot needs matplotlib: pip install 'capsules[plot]'\n")


@pytest.fixture(scope='module')
def seeds(tmp_path_factory):
  """Three seeds of routing=1, two of routing=3 and one of routing=2, given out of order."""
  root = tmp_path_factory.mktemp('seeds')
  wrong = {'a1': [(100, 100), (200, 80)], 'a2': [(100, 60), (200, 90)],
           'a3': [(100, 70), (200, 70)], 'b1': [(100, 50), (200, 50)],
           'b2': [(100, 30), (200, 40)], 'c1': [(100, 20), (200, 30)]}
  routing = {'a': 1, 'b': 3, 'c': 2}
  for name, evaluations in wrong.items():
    write_config(root / name, routing=routing[name[0]], seed=int(name[1]))
    write_evaluations(root / name / 'test', evaluations)
  return [str(root / name) for name in ('a1', 'b1', 'a2', 'c1', 'b2', 'a3')]


def test_group_shows_mean_and_sample_std_over_seeds_by_hand(seeds, tmp_path, capsys):
  path = tmp_path / 'groups.csv'
  compare.main(['--group', f'--csv={path}', *seeds])
  header, _, rows = parse_markdown(capsys.readouterr().out)
  assert header == ['runs', 'routing', *compare.GROUP_STATS]
  # best errors 0.80 0.60 0.70: mean 0.70, std sqrt((0.1^2 + 0.1^2 + 0) / 2) = 0.10;
  # final 0.80 0.90 0.70: 0.80, 0.10. Two seeds: best 0.50 0.30: 0.40, sqrt(0.02 / 1) = 0.14;
  # final 0.50 0.40: 0.45, sqrt(0.005) = 0.07. One seed: its values, no std.
  expected = [['a1 a2 a3', '1', '3', '0.70', '0.10', '0.80', '0.10'],
              ['b1 b2', '3', '2', '0.40', '0.14', '0.45', '0.07'],
              ['c1', '2', '1', '0.20', '', '0.30', '']]
  assert rows == expected
  assert list(csv.reader(path.open())) == [header, *expected]


def test_plot_draws_each_groups_mean_with_its_spread(seeds, tmp_path, capsys):
  output = tmp_path / 'groups.png'
  plot.main(['--group', '--metric=error', f'--output={output}', *seeds])
  header, _, rows = parse_markdown(capsys.readouterr().out.split('\n', 1)[1])
  assert header == ['run', 'curve', 'step', 'error (%)', 'std']
  # step 100 of a: 1.00 0.60 0.70, mean 0.77, std sqrt((0.233^2 + 0.167^2 + 0.067^2) / 2) = 0.21
  assert rows == [['a1 (n=3)', 'mean', '100', '0.77', '0.21'],
                  ['a1 (n=3)', 'mean', '200', '0.80', '0.10'],
                  ['b1 (n=2)', 'mean', '100', '0.40', '0.14'],
                  ['b1 (n=2)', 'mean', '200', '0.45', '0.07'],
                  ['c1 (n=1)', 'mean', '100', '0.20', ''], ['c1 (n=1)', 'mean', '200', '0.30', '']]
  assert tf.io.decode_png(output.read_bytes()).shape[:2] == (plot.HEIGHT * plot.DPI,
                                                             plot.WIDTH * plot.DPI)
