"""What this machine offers, found without starting TensorFlow (so that a command can stop at
once): an NVIDIA driver, and the install command that gives TensorFlow its GPUs."""

import os
import shutil

GPU_INSTALL = "pip install -c constraints.txt -e '.[gpu]'"


def has_nvidia_driver() -> bool:
  """Whether an NVIDIA driver is installed: its nvidia-smi on PATH, or its kernel module."""
  return bool(shutil.which('nvidia-smi')) or os.path.exists('/proc/driver/nvidia')
