"""Makes tests/testdata/f_baseline from the full recording in shared/oracle/f_baseline (110 MB).

Keeps what the tests read: the model variables and global_step (no Adam slots) as a name-based
checkpoint under the original names, the 8 records, and io.npz with the inputs, the expected
outputs and the gradients, of which the two large ones keep a fixed random quarter of their
rows (README.md there). Run once:
python tests/testdata/shrink_f_baseline.py ../shared/oracle/f_baseline
"""

import pathlib
import shutil
import sys

import numpy as np
import tensorflow as tf

TARGET = pathlib.Path(__file__).parent / 'f_baseline'
SUBSET = {'grad:fc1/weights': 1024, 'grad:conv2/weights': 1600}  # rows kept of 4096 and 6400
SEED = 25


def keep_rows(name, grad):
  """A fixed random subset (sorted) of the rows of `grad` as [-1, last axis]."""
  rows = grad.reshape(-1, grad.shape[-1])
  index = np.sort(np.random.default_rng(SEED).choice(len(rows), SUBSET[name], replace=False))
  return rows[index], index


def main(source):
  source = pathlib.Path(source)
  TARGET.mkdir(exist_ok=True)
  reader = tf.train.load_checkpoint(str(source / 'model.ckpt-0'))
  names = sorted(n for n in reader.get_variable_to_shape_map()
                 if not n.endswith(('/Adam', '/Adam_1', '_power')))
  tf.raw_ops.SaveV2(prefix=str(TARGET / 'model.ckpt-0'), tensor_names=names,
                    shape_and_slices=[''] * len(names),
                    tensors=[tf.constant(reader.get_tensor(n)) for n in names])
  io = dict(np.load(source / 'io.npz'))
  for name in SUBSET:
    io[name], io[name.replace('grad:', 'rows:')] = keep_rows(name, io[name])
  np.savez_compressed(TARGET / 'io.npz', **io)
  for name in ('checkpoint', 'test_0shifted_mnist.tfrecords'):
    shutil.copyfile(source / name, TARGET / name)


if __name__ == '__main__':
  main(sys.argv[1])
