"""The one exception type for mistakes a user can fix (paths, flags, overrides, data), the one
way to quote another error in a one-line message, and argparse's mistakes as such a line."""

import argparse
import re
import sys
from typing import NoReturn

from absl import flags


class UserError(Exception):
  """Bad input from the user: `experiment.py` prints the message on one line and exits 2.

  The message says what is wrong, what was expected, and how to fix it.
  """


# TensorFlow's wrapping around the message of an error raised by an op, removed when quoted.
_TF_WRAPPING = (
    (re.compile(r'\{\{function_node [^}]*\}\}\s*'), ''),
    (re.compile(r'\s*\[Op:[^\]]*\]( name: \S*)?\s*$'), ''),
    (re.compile(r'^Error in user-defined function passed to .* with iterator: \S+: '), ''),
    (re.compile(r'^assertion failed: \[(.*)\]$'), r'\1'),
)


def first_line(error: Exception) -> str:
  """The line of an error's message (TensorFlow's `message`, else str()) that a one-line `error:`
  quotes: the first, or for an error inside a tf.function the op's own, without TF's wrapping."""
  text = (getattr(error, 'message', None) or str(error)).strip()
  lines = [line for line in text.splitlines() if line.strip() and not line[0].isspace()]
  if not lines:
    return type(error).__name__
  line = lines[-1] if lines[0] == 'Graph execution error:' else lines[0]
  for pattern, replacement in _TF_WRAPPING:
    line = pattern.sub(replacement, line)
  return line


def fail(message: str) -> NoReturn:
  """Ends a command with the one line `error: message` and exit status 2."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def parse_flags(argv):
  """absl's parser of the global flags, for app.run: a flag mistake is one `error:` line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(flag_error_line(e))


def flag_error_line(error: Exception) -> str:
  """absl's message for a flag mistake, as one line: without the 'ERROR:: ' it puts before an
  unreadable --flagfile, each missing required flag's line joined with '; '."""
  return str(error).replace('ERROR:: ', '').replace('\n', '; ')


class ArgumentParser(argparse.ArgumentParser):
  """argparse for predict and reports.*, whose mistakes are one `error:` line and exit 2, as
  experiment.py's and the data tools' are, instead of the usage text and a line of its own."""

  def error(self, message):
    fail(f'{message} ({self.prog} --help lists the arguments)')
