"""The paper's figure 4: what each class-capsule dimension encodes, seen through the decoder."""

import numpy as np
import tensorflow as tf
from absl import logging

from runner import summaries

DELTAS = np.round(np.arange(-0.25, 0.25 + 1e-9, 0.05), 2)  # 11 steps; DELTAS[5] == 0


def perturbation_grid(model, batch, index: int) -> np.ndarray:
  """Decoder outputs as each dimension of example `index`'s target capsule moves by DELTAS.

  Returns [atoms * height, len(DELTAS) * width, depth]: one row per dimension.
  """
  capsules = model(batch)['capsules'][index]  # [classes, atoms]
  target = int(batch['recons_label'][index])
  classes, atoms = capsules.shape
  offsets = np.zeros([atoms, len(DELTAS), classes, atoms], np.float32)
  for dim in range(atoms):
    offsets[dim, :, target, dim] = DELTAS
  moved = tf.reshape(capsules[None, None] + offsets, [-1, classes, atoms])
  pixels = model.decoder(moved, tf.fill([atoms * len(DELTAS)], target)).numpy()
  spec = model.spec
  grid = pixels.reshape(atoms, len(DELTAS), spec.height, spec.width, spec.depth)
  return grid.transpose(0, 2, 1, 3, 4).reshape(atoms * spec.height, -1, spec.depth)


def write_perturbations(evaluator, config, writer, step: int, num_images: int = 3):
  """Writes the grid of the first evaluation images as TensorBoard images (at the checkpoint's
  step) and PNG files."""
  batch = next(iter(evaluator.dataset))
  for i in range(min(num_images, int(tf.shape(batch['images'])[0]))):
    grid = perturbation_grid(evaluator.model, batch, i)
    png_path = tf.io.gfile.join(config.summary_dir, f'perturbation_{i}.png')
    image = tf.cast(tf.round(255 * np.clip(grid[..., :1] if grid.shape[-1] == 2 else grid, 0, 1)),
                    tf.uint8)
    tf.io.write_file(png_path, tf.io.encode_png(image))
    if writer is not None:
      summaries.write_images(writer, step, f'perturbation/{i}', image[None].numpy() / 255.0)
    logging.info('wrote capsule dimension perturbations to %s', png_path)
