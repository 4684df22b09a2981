"""`python -m reports.plot RUN_DIR... --output=curve.png`: test accuracy (or error) per step.

One line per run from its test/ events (and, with --train, its training batch accuracy dashed
in the same colour), with a legend; prints the PNG's path and every (step, value) plotted.
Needs matplotlib: pip install 'capsules[plot]'.
"""

import argparse
import os
import sys
from typing import List, NamedTuple, Optional, Sequence

import tensorflow as tf

from configs.errors import UserError, first_line
from reports.compare import markdown
from reports.runs import Run, Series, command_parser, find_runs, run_command

WIDTH, HEIGHT, DPI = 8, 5, 100  # inches, inches, pixels per inch: an 800x500 PNG


class Curve(NamedTuple):
  run: str
  kind: str  # 'test' or 'train'
  points: Series


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
    style = {'marker': 'o'} if curve.kind == 'test' else {'linestyle': '--'}
    if curve.run in colours:
      style['color'] = colours[curve.run]
    label = f'{curve.run} (test)' if curve.kind == 'test' else f'{curve.run} (train batch)'
    line, = axes.plot(steps, values, label=label, **style)
    colours.setdefault(curve.run, line.get_color())
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


def plot(paths: Sequence[str], output: str, metric: str = 'accuracy', train: bool = False) -> str:
  """Draws the runs in `paths` to `output`; returns the report: path, notes, points."""
  runs = find_runs(paths)
  lines = curves(runs, metric, train)
  if not any(curve.kind == 'test' for curve in lines):
    raise UserError(f'nothing to plot: no test events in {", ".join(run.path for run in runs)}; '
                    'evaluate the runs first (experiment.py --train=false)')
  draw(lines, output, metric)
  plotted = {curve.run for curve in lines if curve.kind == 'test'}
  notes = [f'note: {run.name} has no test evaluations; not plotted\n'
           for run in runs if run.name not in plotted]
  rows = [[c.run, c.kind, str(step), f'{value:.2f}'] for c in lines for step, value in c.points]
  return ''.join([f'wrote {output}\n', *notes,
                  markdown(['run', 'curve', 'step', f'{metric} (%)'], rows)])


def _parser() -> argparse.ArgumentParser:
  parser = command_parser('plot', __doc__)
  parser.add_argument('--output', required=True, metavar='FILE.png', help='the PNG to write')
  parser.add_argument('--metric', choices=('accuracy', 'error'), default='accuracy',
                      help='what the y axis shows, in %% (default: accuracy)')
  parser.add_argument('--train', action='store_true',
                      help='also draw each run\'s training batch accuracy, dashed')
  return parser


def main(argv: Optional[Sequence[str]] = None):
  run_command(_parser(), lambda a: sys.stdout.write(plot(a.runs, a.output, a.metric, a.train)),
              argv)


if __name__ == '__main__':
  main()
