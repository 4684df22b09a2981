"""Trains and evaluates capsule networks: the flags of the 2017 code, on TensorFlow 2.

Kept short on purpose: its flags are RunConfig's fields (configs/run_config.py: one definition
of each setting, with its default and help); it checks them into one RunConfig and calls
runner.train, runner.evaluate, runner.evaluate_ensemble or runner.export. README.md and docs/
have the recipes.
"""

import atexit
import gc
import logging as python_logging
import os
import sys
import typing

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app, flags, logging  # noqa: E402

from configs import RunConfig, UserError, make_hparams  # noqa: E402
from configs.errors import fail, first_line, parse_flags  # noqa: E402

FLAGS = flags.FLAGS
_DEFINE = {str: flags.DEFINE_string, int: flags.DEFINE_integer, bool: flags.DEFINE_boolean}


def define_flags(flag_values=FLAGS):
  """One absl flag per RunConfig setting: same name, default and help."""
  for field in RunConfig.flag_fields():
    kind = field.type
    if typing.get_origin(kind) is typing.Union:  # Optional[X]: no value means "decide for me"
      kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    _DEFINE[kind](field.name, field.default, field.metadata['help'], flag_values=flag_values)


def make_config() -> RunConfig:
  """The RunConfig the flags describe; raises UserError for bad values or combinations."""
  values = {field.name: FLAGS[field.name].value for field in RunConfig.flag_fields()}
  hparams = make_hparams(values['preset'], values['hparams_override'], values['model'])
  return RunConfig(**values, hparams=hparams).validate_flags()


def run(config):
  import runner  # pylint: disable=g-import-not-at-top
  if config.train:
    return runner.train(config)
  if config.export_dir:
    return runner.export(config)
  if config.ensemble:
    return runner.evaluate_ensemble(config)
  return runner.evaluate(config)


def main(argv):
  logging.set_verbosity(logging.INFO)
  try:
    if len(argv) > 1:
      raise UserError(f'unexpected arguments: {" ".join(argv[1:])}; flags are written '
                      '--name=value (python experiment.py --help lists them)')
    config = make_config()
  except UserError as e:
    _fail(e)
  from runner import Preempted, WorkerLost  # pylint: disable=g-import-not-at-top
  try:
    run(config)
  except Preempted as e:
    logging.warning('%s', e)
    sys.exit(e.exit_code)
  except WorkerLost as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(e.exit_code)
  except UserError as e:  # bad data and checkpoints are turned into one where they are read
    _fail(e)


def _fail(error):
  """Prints one line naming the problem and exits 2 (with --debug: the whole traceback)."""
  if FLAGS.debug:
    raise error
  # A checkpoint restore that failed leaves TensorFlow to warn of each value it did not read
  # once the restore is collected, at exit: dozens of lines after the one that says what was
  # wrong. The process ends here, so TensorFlow's logger goes quiet first.
  python_logging.getLogger('tensorflow').disabled = True
  fail(first_line(error))


if __name__ == '__main__':
  # Everything is written and flushed before exit; collecting TensorFlow's objects then would
  # keep the process alive 1 to 8 s longer (atexit: last in, first out, so this runs last).
  atexit.register(gc.freeze)
  define_flags()
  app.run(main, flags_parser=parse_flags)
