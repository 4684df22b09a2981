"""`python -m reports.plot RUN_DIR... --output=curve.png`: test accuracy (or error) per step.

One line per run from its test/ events (and, with --train, its training batch accuracy dashed
in the same colour), with a legend; prints the PNG's path and every (step, value) plotted.
--group: one line per group of runs that differ only in --seed (reports.compare --group), the
mean over its runs at the steps all of them evaluated, in a band of +-1 sample standard
deviation (none for a group of one).
Needs matplotlib: pip install 'capsules[plot]'.
"""

import argparse
import os
import statistics
import sys
from typing import List, NamedTuple, Optional, Sequence

import tensorflow as tf

from configs.errors import UserError, first_line
from reports.compare import group_runs, markdown
from reports.runs import Run, Series, command_parser, find_runs, run_command

_LABELS = {'test': 'test', 'train': 'train batch', 'mean': 'mean +- std'}
WIDTH, HEIGHT, DPI = 8, 5, 100  # inches, inches, pixels per inch: an 800x500 PNG


class Curve(NamedTuple):
  run: str
  kind: str  # 'test', 'train' or 'mean' (of a group's test curves)
  points: Series
  spread: Series = []  # (step, standard deviation) of a group's mean


def _percent(errors: Series, metric: str) -> Series:
  """(step, error %) as the metric asked for, in %."""
  return [(step, error if metric == 'error' else 100.0 - error) for step, error in errors]


def curves(runs: Sequence[Run], metric: str = 'accuracy', train: bool = False) -> List[Curve]:
  """Each run's test accuracy or error in % per evaluated step (and training batch accuracy)."""
  result = []
  for run in runs:
    if run.test_errors():
      result.append(Curve(run.name, 'test', _percent(run.test_errors(), metric)))
    if train and run.train.get('batch_accuracy'):
      errors = [(step, 100.0 * (1.0 - accuracy))
                for step, accuracy in run.train['batch_accuracy']]
      result.append(Curve(run.name, 'train', _percent(errors, metric)))
  return result


def group_curves(runs: Sequence[Run], metric: str = 'accuracy') -> List[Curve]:
  """Per group of runs (reports.compare.group_runs): the mean test curve over its evaluated
  runs at the steps all of them evaluated, and its sample standard deviation there."""
  result = []
  for group in group_runs(runs):
    series = [dict(_percent(run.test_errors(), metric)) for run in group if run.test_errors()]
    if not series:
      continue
    steps = sorted(set.intersection(*(set(s) for s in series)))
    values = [[s[step] for s in series] for step in steps]
    spread = ([(step, statistics.stdev(v)) for step, v in zip(steps, values)]
              if len(series) > 1 else [])
    result.append(Curve(f'{group[0].name} (n={len(series)})', 'mean',
                        [(step, statistics.mean(v)) for step, v in zip(steps, values)], spread))
  return result


def draw(lines: Sequence[Curve], output: str, metric: str):
  """Writes the curves as a PNG of WIDTH x HEIGHT inches at DPI."""
  try:
    from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise UserError("reports.plot needs matplotlib: pip install 'capsules[plot]'") from None
  figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
  axes = figure.add_subplot()
  colours = {}
  for curve in lines:
    steps, values = zip(*curve.points)
    style = {'linestyle': '--'} if curve.kind == 'train' else {'marker': 'o'}
    if curve.run in colours:
      style['color'] = colours[curve.run]
    label = f'{curve.run} ({_LABELS[curve.kind]})'
    line, = axes.plot(steps, values, label=label, **style)
    colours.setdefault(curve.run, line.get_color())
    if curve.spread:
      spread = [std for _, std in curve.spread]
      axes.fill_between(steps, [v - d for v, d in zip(values, spread)],
                        [v + d for v, d in zip(values, spread)], color=line.get_color(),
                        alpha=0.2)
  axes.set_xlabel('step')
  axes.set_ylabel(f'{metric} (%)')
  axes.set_title(f'{metric} per step')
  axes.grid(alpha=0.3)
  axes.legend()
  figure.tight_layout()
  try:
    tf.io.gfile.makedirs(os.path.dirname(os.path.abspath(output)))
    figure.savefig(output, format='png', dpi=DPI)
  except (tf.errors.OpError, OSError) as e:
    raise UserError(f'cannot write {output} ({first_line(e)})') from None


def plot(paths: Sequence[str], output: str, metric: str = 'accuracy', train: bool = False,
         group: bool = False) -> str:
  """Draws the runs in `paths` (or their groups' means) to `output`; returns the report: path,
  notes, points."""
  runs = find_runs(paths)
  lines = group_curves(runs, metric) if group else curves(runs, metric, train)
  if not any(curve.kind != 'train' for curve in lines):
    raise UserError(f'nothing to plot: no test events in {", ".join(run.path for run in runs)}; '
                    'evaluate the runs first (experiment.py --train=false)')
  draw(lines, output, metric)
  plotted = {run.name for run in runs if run.test_errors()}
  notes = [f'note: {run.name} has no test evaluations; not plotted\n'
           for run in runs if run.name not in plotted]
  header = ['run', 'curve', 'step', f'{metric} (%)'] + ['std'] * group
  rows = []
  for curve in lines:
    spread = dict(curve.spread)
    for step, value in curve.points:
      std = [f'{spread[step]:.2f}' if step in spread else ''] * group
      rows.append([curve.run, curve.kind, str(step), f'{value:.2f}', *std])
  return ''.join([f'wrote {output}\n', *notes, markdown(header, rows)])


def _parser() -> argparse.ArgumentParser:
  parser = command_parser('plot', __doc__)
  parser.add_argument('--output', required=True, metavar='FILE.png', help='the PNG to write')
  parser.add_argument('--metric', choices=('accuracy', 'error'), default='accuracy',
                      help='what the y axis shows, in %% (default: accuracy)')
  parser.add_argument('--train', action='store_true',
                      help='also draw each run\'s training batch accuracy, dashed')
  parser.add_argument('--group', action='store_true',
                      help='one mean curve per group of runs that differ only in --seed, with '
                      'its standard deviation as a band')
  return parser


def main(argv: Optional[Sequence[str]] = None):
  def action(args):
    sys.stdout.write(plot(args.runs, args.output, args.metric, args.train, args.group))
  run_command(_parser(), action, argv)


if __name__ == '__main__':
  main()
