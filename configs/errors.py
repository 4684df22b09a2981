"""The one exception type for mistakes a user can fix (paths, flags, overrides, data), and the
one way to quote another error in a one-line message."""


class UserError(Exception):
  """Bad input from the user: `experiment.py` prints the message on one line and exits 2.

  The message says what is wrong, what was expected, and how to fix it.
  """


def first_line(error: Exception) -> str:
  """The first line of an error's message (TensorFlow's `message`, else str()): what a one-line
  `error:` quotes of it."""
  text = (getattr(error, 'message', None) or str(error)).strip()
  return text.splitlines()[0] if text else type(error).__name__
