"""The training stream is a function of the seed and the position alone (input_data/pipeline.py
`epochs`): a resumed run reads on where it stopped, on any number of replicas."""

import numpy as np
import pytest
import tensorflow as tf

import input_data
from input_data import mnist
from tests import cli


def labels_of(batches):
  return [tuple(np.argmax(b['labels'].numpy(), axis=1)) for b in batches]


def stream(data_dir, start, count, **options):
  dataset, _ = input_data.build_dataset('mnist', data_dir=str(data_dir), split='train',
                                        batch_size=4, seed=7, start=start, **options)
  return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(count)]


@pytest.mark.parametrize('options', [{}, {'generate': True}], ids=['tfrecords', 'generated'])
def test_the_stream_from_a_position_is_the_tail_of_the_whole_stream(tiny_data, options):
  data_dir = mnist.default_raw_dir() if options else tiny_data
  whole = stream(data_dir, 0, 12, **options)
  tail = stream(data_dir, 4 * 7, 5, **options)  # from step 7 on
  for got, expected in zip(tail, whole[7:]):
    for key in expected:
      np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
  if not options:  # records: every epoch holds each record once, each in an order of its own
    epochs = [np.concatenate([b['images'].reshape(4, -1) for b in whole[i:i + 2]])
              for i in range(0, 12, 2)]
    for epoch in epochs:
      assert sorted(map(bytes, epoch)) == sorted(map(bytes, epochs[0]))
    assert len({bytes(epoch) for epoch in epochs}) > 1


def saved(path):
  reader = tf.train.load_checkpoint(str(path))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith(('model/', 'optimizer/')) and 'iteration' not in k}


def assert_same_weights(run, reference, **tolerance):
  got, expected = saved(run / 'train/model.ckpt-12'), saved(reference / 'train/model.ckpt-12')
  assert got.keys() == expected.keys() and len(expected) > 10
  for name, value in expected.items():
    np.testing.assert_allclose(got[name], value, err_msg=name, **tolerance)


@pytest.fixture(scope='module')
def runs(deterministic_trained, tmp_path_factory):
  """deterministic_trained's 12 steps on one device (8 records, 4 per batch: 5 epoch boundaries)
  again: straight and 6 + 6 resumed on 2 logical CPU replicas, and 6 on 2 replicas then resumed
  on one device. Its folder holds every run's folder, 'one' being deterministic_trained's."""
  one, args = deterministic_trained
  root = tmp_path_factory.mktemp('streams')
  (root / 'one').symlink_to(one)
  two = [[*args, '--cpu_replicas=2', f'--summary_dir={root}/{name}', f'--max_steps={n}']
         for name, n in (('two', 12), ('two_resumed', 6), ('two_then_one', 6),
                         ('two_resumed', 12))]
  then_one = [[*args, f'--summary_dir={root}/two_then_one', '--max_steps=12']]
  for done in cli.run_in_one_process(two) + cli.run_in_one_process(then_one):
    assert done.returncode == 0, done.stderr[-2000:]
  return root


def test_two_logical_cpu_devices_match_one_device(runs):
  two_devices = cli.scalars(runs / 'two' / 'train')['loss/total']  # 2 examples per device
  one_device = cli.scalars(runs / 'one' / 'train')['loss/total']
  assert [s for s, _ in two_devices] == [s for s, _ in one_device] == list(range(1, 13))
  np.testing.assert_allclose([v for _, v in two_devices], [v for _, v in one_device], rtol=1e-4)


def test_a_run_resumed_on_two_replicas_ends_as_one_never_stopped(runs):
  assert_same_weights(runs / 'two_resumed', runs / 'two', rtol=1e-5, atol=1e-6)
  losses = cli.scalars(runs / 'two_resumed' / 'train')['loss/total']
  assert losses == cli.scalars(runs / 'two' / 'train')['loss/total']


def test_a_run_resumed_on_fewer_replicas_reads_on_as_one_never_stopped(runs):
  # The same global batches; summed over 2 replicas or on one, floats round differently.
  assert_same_weights(runs / 'two_then_one', runs / 'one', rtol=1e-4, atol=1e-5)
  resumed = cli.scalars(runs / 'two_then_one' / 'train')['loss/total']
  straight = cli.scalars(runs / 'one' / 'train')['loss/total']
  assert [s for s, _ in resumed] == list(range(1, 13))
  np.testing.assert_allclose([v for _, v in resumed], [v for _, v in straight], rtol=1e-4)
