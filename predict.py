"""Predicts the class of image files with a SavedModel written by experiment.py --export_dir.

  python -m predict --model=DIR FILE_OR_GLOB... [--output=FILE.csv]

Each file (PNG, JPEG, BMP, GIF, WebP; any size, grayscale or color) is decoded by TensorFlow and
brought to the model's input as training's images were (input_data/images.py: channels
converted, resized by the --resize_mode recorded in the export, rounded to uint8), then
predicted in batches. One line per file: the file, the predicted class name and its score, and
the next two classes with theirs; --output writes them as CSV (header file,class,score,...).
A file that does not decode is an `error:` line, the others are still predicted, and the exit
status is 1; a glob that matches nothing or a folder without a SavedModel is one `error:` line
and exit status 2.
"""

import atexit
import csv
import gc
import glob
import json
import os
import sys
from typing import List

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

from configs.errors import ArgumentParser, UserError, fail  # noqa: E402
from configs.progress import Progress  # noqa: E402
from input_data import folder, images  # noqa: E402

SHOWN = 3  # classes per file: the prediction and the next two
REPORT_SECONDS = 10


def find_files(patterns: List[str]) -> List[str]:
  """The image files each pattern (a path or a glob) names, in order (a glob's other files are
  left out); UserError for a pattern naming none, or a file named in a format not read."""
  files = []
  for pattern in patterns:
    matched = sorted(tf.io.gfile.glob(pattern))
    if not matched:
      raise UserError(f'{pattern} matches no file')
    if not glob.has_magic(pattern) and not folder.is_image(os.path.basename(pattern)):
      raise UserError(f'{pattern}: unsupported image format; expected one of '
                      f'{", ".join(folder.IMAGE_EXTENSIONS)}')
    found = [f for f in matched if folder.is_image(os.path.basename(f))]
    if len(found) < len(matched):
      logging.info('%s: left out %d file(s) that are not images', pattern,
                   len(matched) - len(found))
    files += found
  if not files:
    raise UserError(f'{" ".join(patterns)}: no image file among them (expected '
                    f'{", ".join(folder.IMAGE_EXTENSIONS)})')
  return files


def load_model(model_dir: str):
  """(serving function, metadata) of an export; UserError when `model_dir` holds none."""
  if not tf.saved_model.contains_saved_model(model_dir):
    raise UserError(f'--model={model_dir} holds no SavedModel; write one with python '
                    'experiment.py --train=false --checkpoint=PATH --export_dir=DIR')
  model = tf.saved_model.load(model_dir)
  if not hasattr(model, 'metadata'):
    raise UserError(f'--model={model_dir} is a SavedModel without this project\'s metadata; '
                    'write one with experiment.py --export_dir')
  return model.signatures['serving_default'], json.loads(model.metadata.numpy())


def model_inputs(files: List[str], metadata: dict, batch_size: int) -> tf.data.Dataset:
  """Batches of (index into files, uint8 image) as the model takes them; files that do not
  decode are left out."""
  height, width, depth = metadata['input_shape']

  def load(index):
    image = images.decode(tf.io.read_file(tf.gather(files, index)), depth)
    image = images.resize(image, (height, width), metadata['resize_mode'])
    return index, tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8)

  indices = tf.data.Dataset.range(len(files))
  return (indices.map(load, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
          .batch(batch_size).prefetch(tf.data.AUTOTUNE))


def predict(serve, files: List[str], metadata: dict, batch_size: int):
  """Yields (file index, scores) of every file that decodes, in order, logging progress."""
  progress, done = Progress(len(files)), 0
  for indices, batch in model_inputs(files, metadata, batch_size):
    scores = serve(images=batch)['scores'].numpy()
    yield from zip(indices.numpy(), scores)
    done = int(indices[-1]) + 1
    if progress.due(REPORT_SECONDS):
      logging.info('predicted %d/%d files, %.0f files/s, ETA %s', done, len(files),
                   progress.rate(done), progress.eta(done))


def row(file: str, scores: np.ndarray, class_names: List[str]) -> list:
  """file, then class name and score of the SHOWN highest scores."""
  top = np.argsort(-scores, kind='stable')[:SHOWN]
  return [file] + [value for k in top for value in (class_names[k], f'{scores[k]:.6g}')]


def header(num_classes: int) -> List[str]:
  shown = min(SHOWN, num_classes)
  return ['file', 'class', 'score'] + [f'{name}_{i}' for i in range(2, shown + 1)
                                       for name in ('class', 'score')]


def check_output(path: str):
  """UserError, before any prediction, for an --output that cannot be written (tried: opened
  for appending, and removed again if it did not exist)."""
  existed = os.path.exists(path)
  try:
    open(path, 'a').close()
  except OSError as e:
    raise UserError(f'--output={path} cannot be written ({e.strerror}); expected a file in an '
                    'existing, writable folder') from None
  if not existed:
    os.remove(path)


def run(args) -> int:
  """Predicts; returns the exit status (1 when a file did not decode)."""
  if args.output:
    check_output(args.output)
  files = find_files(args.files)
  serve, metadata = load_model(args.model)
  names = metadata['class_names']
  rows = {index: row(files[index], scores, names)
          for index, scores in predict(serve, files, metadata, args.batch_size)}
  if args.output:
    with open(args.output, 'w', newline='') as f:
      csv.writer(f).writerows([header(len(names)), *rows.values()])
    logging.info('wrote %d predictions to %s', len(rows), args.output)
  else:
    print('\n'.join('  '.join(values) for values in rows.values()))
  failed = [file for i, file in enumerate(files) if i not in rows]
  for file in failed:
    print(f'error: {file} is not an image TensorFlow decodes (PNG, JPEG, BMP, GIF, WebP)',
          file=sys.stderr)
  return 1 if failed else 0


def parse_args(argv):
  parser = ArgumentParser(prog='python -m predict', description=__doc__.split('\n')[0])
  parser.add_argument('files', nargs='+', metavar='FILE_OR_GLOB', help='image files or globs')
  parser.add_argument('--model', required=True, help='a folder from experiment.py --export_dir')
  parser.add_argument('--output', default='', help='write CSV to this file instead of stdout')
  parser.add_argument('--batch_size', type=int, default=100, help='images per model call')
  args = parser.parse_args(argv)
  if args.batch_size < 1:
    parser.error(f'argument --batch_size: must be at least 1, got {args.batch_size}')
  return args


def main(argv=None):
  args = parse_args(argv)
  logging.set_verbosity(logging.INFO)
  try:
    sys.exit(run(args))
  except UserError as e:
    fail(str(e))


if __name__ == '__main__':
  atexit.register(gc.freeze)  # no collection of TensorFlow's objects at exit (experiment.py)
  main()
