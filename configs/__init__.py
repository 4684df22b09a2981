"""Typed configuration: model hparams with presets and overrides; the user-error type."""

from configs.errors import UserError
from configs.hparams import HParams, PRESETS, format_overrides, make_hparams, parse_overrides
from configs.run_config import RunConfig
