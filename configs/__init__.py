"""Typed configuration: model hparams with presets and overrides; the user-error type."""

import os

# Every command of the project imports configs before TensorFlow starts a device: each process
# takes the GPU memory it uses, growing as needed, not nearly all of it at start (training and
# an evaluation beside it, the benchmark's row processes, the tests' processes share a GPU).
os.environ.setdefault('TF_FORCE_GPU_ALLOW_GROWTH', 'true')

from configs.errors import UserError  # noqa: E402
from configs.hparams import (HParams, PRESETS, format_overrides, make_hparams,  # noqa: E402
                             parse_overrides)
from configs.run_config import RunConfig  # noqa: E402
