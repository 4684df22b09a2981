"""The one exception type for mistakes a user can fix (paths, flags, overrides, data)."""


class UserError(Exception):
  """Bad input from the user: `experiment.py` prints the message on one line and exits 2.

  The message says what is wrong, what was expected, and how to fix it.
  """
