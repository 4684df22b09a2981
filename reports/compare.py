"""`python -m reports.compare RUN_DIR...`: runs side by side, one row each (Markdown or CSV).

Columns: the run (its directory's name), the flags and hparams that differ between the runs,
the last training step, the best test error with its step (the first step on a tie), the final
test error with its step, and the number of evaluated checkpoints; then an ensemble's error
and notes on what is missing, when any run has them.

--group: one row per group of runs whose flags and hparams differ only in --seed (and their
directory), as the paper reports results over trials: the number of evaluated runs, and the
mean and sample standard deviation (n - 1 in the denominator) of their best and final test
errors; a group of one has no standard deviation.
"""

import argparse
import csv
import io
import json
import statistics
import sys
from typing import List, Optional, Sequence, Tuple

import tensorflow as tf

from configs.errors import UserError, first_line
from reports.runs import Run, command_parser, find_runs, run_command

STATS = ('last step', 'best error (%)', 'best step', 'final error (%)', 'final step',
         'evaluations')
GROUP_STATS = ('n', 'best error (%)', 'best error std', 'final error (%)', 'final error std')
# What may differ between the runs of one group (--group).
_TRIAL_KEYS = ('seed',)
# The run's own location: it differs between any two runs and the name column shows it.
_IDENTITY_KEYS = ('summary_dir',)
_FIRST_KEYS = ('model', 'dataset')


def flat_config(config: dict) -> dict:
  """A run_config.json as one dict: model and dataset, the other flags, then the hparams."""
  flags = {k: v for k, v in config.items() if k != 'hparams' and k not in _IDENTITY_KEYS}
  if 'train_batch_size' in flags:  # the batch trained with, not --batch_size (None: default)
    flags['batch_size'] = flags.pop('train_batch_size')
  flat = {k: flags[k] for k in _FIRST_KEYS if k in flags}
  flat.update(sorted(flags.items()))
  for key, value in sorted(config.get('hparams', {}).items()):
    flat[f'hparams.{key}' if key in flat else key] = value
  return flat


def differing_keys(configs: Sequence[dict]) -> List[str]:
  """The keys of the flat configs whose values are not the same in all of them."""
  keys = list(dict.fromkeys(k for config in configs for k in config))
  missing = object()
  return [k for k in keys if len({repr(c.get(k, missing)) for c in configs}) > 1]


def format_value(value) -> str:
  if isinstance(value, bool):
    return str(value).lower()
  return 'null' if value is None else str(value)


def table(runs: Sequence[Run]) -> Tuple[List[str], List[List[str]]]:
  """The header and one row of cells per run; a missing value is an empty cell."""
  configs = [flat_config(run.config) if run.config is not None else None for run in runs]
  keys = differing_keys([c for c in configs if c is not None])
  ensembles = [run.test_errors('ensemble/') for run in runs]
  header = ['run', *keys, *STATS]
  header += ['ensemble error (%)'] if any(ensembles) else []
  header += ['notes'] if any(run.notes for run in runs) else []
  rows = []
  for run, config, ensemble in zip(runs, configs, ensembles):
    row = [run.name]
    row += [format_value(config[k]) if config and k in config else '' for k in keys]
    last = run.last_train_step
    row.append('' if last is None else str(last))
    errors = run.test_errors()
    if errors:
      best = min(errors, key=lambda point: point[1])  # min keeps the first of equal errors
      final = errors[-1]
      row += [f'{best[1]:.2f}', str(best[0]), f'{final[1]:.2f}', str(final[0])]
    else:
      row += [''] * 4
    row.append(str(len(errors)) if run.test else '')
    if 'ensemble error (%)' in header:
      row.append(f'{ensemble[-1][1]:.2f}' if ensemble else '')
    if 'notes' in header:
      row.append('; '.join(run.notes))
    rows.append(row)
  return header, rows


def group_runs(runs: Sequence[Run]) -> List[List[Run]]:
  """Runs whose flags and hparams differ only in --seed (and directory), in first-seen order;
  a run without a config is a group of its own."""
  groups = {}
  for run in runs:
    key = run.path
    if run.config is not None:
      same = {k: v for k, v in flat_config(run.config).items() if k not in _TRIAL_KEYS}
      key = json.dumps(same, sort_keys=True, default=str)
    groups.setdefault(key, []).append(run)
  return list(groups.values())


def mean_and_std(values: Sequence[float]) -> List[str]:
  """Mean and sample standard deviation, two decimals; no deviation of fewer than two."""
  if not values:
    return ['', '']
  std = f'{statistics.stdev(values):.2f}' if len(values) > 1 else ''
  return [f'{statistics.mean(values):.2f}', std]


def group_table(runs: Sequence[Run]) -> Tuple[List[str], List[List[str]]]:
  """The header and one row per group of runs (group_runs): the flags that differ between the
  groups, then GROUP_STATS over the group's evaluated runs."""
  groups = group_runs(runs)
  configs = [flat_config(g[0].config) if g[0].config is not None else None for g in groups]
  keys = [k for k in differing_keys([c for c in configs if c is not None])
          if k not in _TRIAL_KEYS]
  rows = []
  for group, config in zip(groups, configs):
    errors = [run.test_errors() for run in group if run.test_errors()]
    best = [min(error for _, error in series) for series in errors]
    final = [series[-1][1] for series in errors]
    row = [' '.join(run.name for run in group)]
    row += [format_value(config[k]) if config and k in config else '' for k in keys]
    rows.append(row + [str(len(errors))] + mean_and_std(best) + mean_and_std(final))
  return ['runs', *keys, *GROUP_STATS], rows


def _is_numeric(column: Sequence[str]) -> bool:
  """Whether every filled cell of a column (and at least one) is a number."""
  filled = [cell for cell in column if cell]
  try:
    return bool([float(cell) for cell in filled])
  except ValueError:
    return False


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  """A Markdown table padded to line up in a terminal; numeric columns align right."""
  cells = [[str(c).replace('|', '\\|') for c in row] for row in [header, *rows]]
  widths = [max(3, *(len(row[i]) for row in cells)) for i in range(len(header))]
  right = [_is_numeric([row[i] for row in cells[1:]]) for i in range(len(header))]
  def line(row):
    return '| ' + ' | '.join(c.rjust(w) if r else c.ljust(w)
                             for c, w, r in zip(row, widths, right)) + ' |'
  rule = '| ' + ' | '.join('-' * (w - 1) + ':' if r else '-' * w
                           for w, r in zip(widths, right)) + ' |'
  return '\n'.join([line(cells[0]), rule, *map(line, cells[1:])]) + '\n'


def csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  out = io.StringIO()
  writer = csv.writer(out, lineterminator='\n')
  writer.writerow(header)
  writer.writerows(rows)
  return out.getvalue()


def compare(paths: Sequence[str], output_format: str = 'markdown',
            csv_path: Optional[str] = None, group: bool = False) -> str:
  """The table of the runs in `paths` (or of their groups) as text; also written as CSV to
  `csv_path` if given."""
  header, rows = (group_table if group else table)(find_runs(paths))
  if csv_path:
    try:
      with tf.io.gfile.GFile(csv_path, 'w') as f:
        f.write(csv_text(header, rows))
    except (tf.errors.OpError, OSError) as e:
      raise UserError(f'cannot write {csv_path} ({first_line(e)})') from None
  return (csv_text if output_format == 'csv' else markdown)(header, rows)


def _parser() -> argparse.ArgumentParser:
  parser = command_parser('compare', __doc__)
  parser.add_argument('--format', choices=('markdown', 'csv'), default='markdown',
                      help='how the table is printed (default: markdown)')
  parser.add_argument('--csv', metavar='FILE', help='also write the table as CSV to FILE')
  parser.add_argument('--group', action='store_true',
                      help='one row per group of runs that differ only in --seed: mean and '
                      'sample standard deviation of their best and final test errors')
  return parser


def main(argv: Optional[Sequence[str]] = None):
  def action(args):
    sys.stdout.write(compare(args.runs, args.format, args.csv, args.group))
  run_command(_parser(), action, argv)


if __name__ == '__main__':
  main()
