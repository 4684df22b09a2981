"""RunConfig: everything one run of experiment.py needs, resolved from flags and validated."""

import dataclasses
import json
import os
from typing import Optional

from configs.errors import UserError
from configs.hparams import HParams


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """One run: what to train or evaluate, on which data, where to write, on which devices."""
  hparams: HParams = HParams()
  model: str = 'capsule'
  dataset: str = 'mnist'
  data_dir: str = ''  # empty: the built-in 5,000 real MNIST digits (mnist only)
  summary_dir: str = ''
  train: bool = True
  validate: bool = False
  max_steps: int = 1000
  save_step: int = 1500
  checkpoint: str = ''
  num_gpus: int = 1
  cpu_replicas: int = 0  # split the CPU into this many logical devices (multi-device tests)
  num_targets: int = 1
  num_trials: int = 1
  eval_size: int = 0  # 0: the whole evaluation set
  batch_size: int = 0  # 0: 128 for training, 100 for evaluation, as the original
  seed: Optional[int] = None
  deterministic: bool = False
  jit_compile: Optional[bool] = None  # None: XLA on GPUs, not on CPUs (20x slower there)
  mixed_precision: str = 'none'  # none | bfloat16 | float16
  log_every: int = 100
  steps_per_loop: int = 1  # training steps per tf.function call (fewer host round trips)
  predictions_out: str = ''
  perturb: bool = False
  eval_timeout_secs: int = 6 * 3600
  keep_checkpoints: int = 1000
  distort: Optional[bool] = None  # None: the dataset's default
  generate: bool = False  # mnist: shift/pair digits on the fly from raw IDX files

  @property
  def train_dir(self) -> str:
    return os.path.join(self.summary_dir, 'train')

  @property
  def test_dir(self) -> str:
    return os.path.join(self.summary_dir, 'test')

  @property
  def train_batch_size(self) -> int:
    return self.batch_size or 128

  @property
  def eval_batch_size(self) -> int:
    return self.batch_size or 100

  @property
  def ensemble(self) -> bool:
    return '{}' in self.checkpoint

  def validate_flags(self) -> 'RunConfig':
    """Raises UserError for values or combinations that cannot work; returns self."""
    def need(condition, message):
      if not condition:
        raise UserError(message)
    need(self.summary_dir or (not self.train and self.checkpoint and not self.perturb),
         '--summary_dir is required (checkpoints and events are written there)')
    need(self.max_steps >= 1, f'--max_steps={self.max_steps} must be at least 1')
    need(self.save_step >= 1, f'--save_step={self.save_step} must be at least 1')
    need(self.log_every >= 1, f'--log_every={self.log_every} must be at least 1')
    need(self.steps_per_loop >= 1, f'--steps_per_loop={self.steps_per_loop} must be at least 1')
    need(self.num_gpus >= 0, f'--num_gpus={self.num_gpus} must not be negative')
    need(self.num_targets in (1, 2), f'--num_targets={self.num_targets} must be 1 or 2')
    need(self.num_trials >= 1, f'--num_trials={self.num_trials} must be at least 1')
    need(self.eval_size >= 0, f'--eval_size={self.eval_size} must not be negative')
    need(self.batch_size >= 0, f'--batch_size={self.batch_size} must not be negative')
    need(self.mixed_precision in ('none', 'bfloat16', 'float16'),
         f'--mixed_precision={self.mixed_precision} must be none, bfloat16 or float16')
    need(not (self.deterministic and self.seed is None), '--deterministic needs --seed=N')
    need(not (self.num_trials > 1 and not self.ensemble),
         f'--num_trials={self.num_trials} needs a --checkpoint pattern with {{}} for the trial '
         'number, e.g. runs/cifar{}/train/model.ckpt-600000')
    need(not (self.ensemble and self.num_trials < 2),
         'a --checkpoint with {} is an ensemble: set --num_trials to the number of members')
    need(not (self.train and self.ensemble), '--train evaluates no ensemble: add --train=false')
    need(not (self.train and self.predictions_out),
         '--predictions_out is written by evaluation: add --train=false')
    need(not (self.perturb and (self.train or not self.checkpoint or self.ensemble)),
         '--perturb needs --train=false and a single --checkpoint')
    need(not (self.num_targets == 2 and self.dataset != 'mnist'),
         f'--num_targets=2 is MultiMNIST: it needs --dataset=mnist, not {self.dataset}')
    need(not (self.model == 'baseline' and self.perturb),
         '--perturb needs the capsule model (the baseline has no capsules to perturb)')
    need(not (self.perturb and not self.hparams.remake),
         '--perturb needs the decoder: drop remake=false from --hparams_override')
    return self

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
