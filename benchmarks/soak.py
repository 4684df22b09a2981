"""Soak: trains a tiny capsule model for many steps and reports resident memory at start and end.

  python -m benchmarks.soak --steps=2000

Memory must stay flat (growth under 5% from the first reading after warm-up to the end): a
leak of a few KB per step would end a week-long run. Readings come from the run's own
`resident_memory_mb` training scalar.
"""

import tempfile

from absl import app, flags

from configs.errors import parse_flags

flags.DEFINE_integer('steps', 2000, 'Training steps.', lower_bound=2)
flags.DEFINE_integer('warmup', 100, 'Steps before the first memory reading.', lower_bound=1)
flags.register_multi_flags_validator(
    ['steps', 'warmup'], lambda f: f['steps'] > f['warmup'] and f['steps'] % f['warmup'] == 0,
    '--steps must be a multiple of --warmup, above it (readings are taken every --warmup steps)')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  from tensorboard.util import tensor_util  # pylint: disable=g-import-not-at-top
  from configs import RunConfig, make_hparams  # pylint: disable=g-import-not-at-top
  import runner  # pylint: disable=g-import-not-at-top

  with tempfile.TemporaryDirectory() as run_dir:
    config = RunConfig(
        hparams=make_hparams('quickstart', 'conv1_filters=16,num_prime_capsules=4,remake=true'),
        data_dir='builtin', summary_dir=run_dir, max_steps=FLAGS.steps, save_step=500,
        log_every=FLAGS.warmup, batch_size=16, seed=1).validate_flags()
    runner.train(config)
    events = event_accumulator.EventAccumulator(config.train_dir, size_guidance={'tensors': 0})
    events.Reload()
    readings = {e.step: float(tensor_util.make_ndarray(e.tensor_proto))
                for e in events.Tensors('resident_memory_mb')}
  start, end = readings[FLAGS.warmup], readings[FLAGS.steps]
  print(f'resident memory after {FLAGS.warmup} steps: {start:.1f} MB; after {FLAGS.steps} steps: '
        f'{end:.1f} MB; growth {100 * (end - start) / start:+.2f}%')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
