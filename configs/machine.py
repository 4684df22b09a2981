"""What this machine offers, found without starting TensorFlow (so that a command can stop at
once): an NVIDIA driver, and the install command that gives TensorFlow its GPUs."""

import os
import shutil
import subprocess

GPU_INSTALL = "pip install -c constraints.txt -e '.[gpu]'"


def has_nvidia_driver() -> bool:
  """Whether an NVIDIA driver is installed: its nvidia-smi on PATH, or its kernel module."""
  return bool(shutil.which('nvidia-smi')) or os.path.exists('/proc/driver/nvidia')


def visible_gpus() -> int:
  """NVIDIA GPUs this process may use, without starting TensorFlow's devices:
  CUDA_VISIBLE_DEVICES where set, else `nvidia-smi -L`, else 0."""
  if 'CUDA_VISIBLE_DEVICES' in os.environ:
    return len([d for d in os.environ['CUDA_VISIBLE_DEVICES'].split(',') if d.strip()])
  if not shutil.which('nvidia-smi'):
    return 0
  try:
    listed = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=30,
                            check=True).stdout
  except (OSError, subprocess.SubprocessError):
    return 0
  return sum(line.startswith('GPU ') for line in listed.splitlines())
