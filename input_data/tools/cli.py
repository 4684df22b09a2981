"""The data tools' command lines (`python -m input_data.<tool>`): private flags, progress lines,
and one line `error: ...` (exit 2) for a flag mistake or a UserError."""

from typing import Callable, List

from absl import app
from absl import flags
from absl import logging

from configs.errors import UserError, fail, flag_error_line

LOG_EVERY_S = 10.0


def run(argv: List[str], define: Callable[[flags.FlagValues], None],
        action: Callable[[flags.FlagValues], None]):
  """Parses `argv` into the flags `define(values)` makes, then calls `action(values)`."""
  values = flags.FlagValues()
  define(values)
  try:
    values(argv)
    action(values)
  except flags.Error as e:
    fail(flag_error_line(e))
  except UserError as e:
    fail(str(e))


def run_converter(argv, convert, input_flag, input_help, output_help):
  """run() for a converter: convert(--INPUT_FLAG, --output_dir), both flags required."""
  def define(values: flags.FlagValues):
    flags.DEFINE_string(input_flag, None, input_help, flag_values=values)
    flags.DEFINE_string('output_dir', None, output_help, flag_values=values)
    flags.mark_flags_as_required([input_flag, 'output_dir'], flag_values=values)
  run(argv, define, lambda f: convert(f[input_flag].value, f.output_dir))


def start(main: Callable[[List[str]], None]):
  """Runs `main(argv)` as the program (absl's app.run), leaving the flags to `main`."""
  # app.run insists that the global flags are parsed; ours live in main's own FlagValues.
  app.run(main, flags_parser=lambda argv: [*flags.FLAGS(argv[:1]), *argv[1:]])


def report(done, progress, what, force=False):
  """Logs records written, records/s and ETA, at most every LOG_EVERY_S seconds."""
  if force or progress.due(LOG_EVERY_S):
    logging.info('%s: %d / %d records (%.1f%%), %.0f records/s, ETA %s', what, done,
                 progress.total, 100.0 * done / max(progress.total, 1), progress.rate(done),
                 progress.eta(done))
