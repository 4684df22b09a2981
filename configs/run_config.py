"""RunConfig: every setting of one run of experiment.py, defined once.

Each field that has `help` in its metadata is a command-line flag of the same name, default and
help text (experiment.py generates the flags from these fields); docs/flags.md lists them
(configs/flag_docs.py writes it) and a test keeps the three in step. `hparams` is resolved from
--preset and --hparams_override.
"""

import dataclasses
import json
import os
from typing import Optional

from configs.errors import UserError
from configs.hparams import PRESETS, HParams, default_preset, override_keys
from configs.registry import check_name
from input_data import datasets

# --mixed_precision value -> Keras dtype policy.
PRECISIONS = {'none': 'float32', 'bfloat16': 'mixed_bfloat16', 'float16': 'mixed_float16'}
CONV_IMPLS = ('auto', 'matmul', 'conv')
CLUSTERS = ('auto', 'tf_config', 'slurm', 'none')
BUILTIN_DATA = 'builtin'  # --data_dir value naming the packaged 5,000 real MNIST digits
MODELS = ('baseline', 'capsule', 'paper_baseline')  # --model: models/ registers these names
CONFIG_FILE = 'run_config.json'  # beside a run's checkpoints: its resolved flags and hparams


def setting(default, help_text: str, choices=None):
  """A RunConfig field that is also a flag (--NAME), with its help and allowed values."""
  return dataclasses.field(default=default, metadata={'help': help_text, 'choices': choices})


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """One run: what to train or evaluate, on which data, where to write, on which devices."""
  # The original flags, with their original meanings.
  data_dir: str = setting(
      '', f'Directory of the dataset files; {BUILTIN_DATA!r} (with --dataset=mnist) is the '
      'packaged 5,000 real MNIST digits, for a first look.')
  dataset: str = setting('mnist', 'The dataset to train or evaluate on (see docs/data.md).')
  model: str = setting('capsule', 'The model: capsule, baseline (the original\'s conv_model) '
                       'or paper_baseline (the paper\'s CNN).')
  hparams_override: str = setting(
      '', 'Hparams overrides as key=value,key=value (booleans as true/false), applied on top '
      'of --preset.')
  max_steps: int = setting(1000, 'Number of training steps (global step to stop at).')
  save_step: int = setting(1500, 'Save a checkpoint every this many steps (and at the end).')
  summary_dir: str = setting('', 'Run directory: checkpoints and training events in train/, '
                             'evaluation events in test/.')
  checkpoint: str = setting(
      '', 'Checkpoint to evaluate (this project\'s or the original code\'s), or to start '
      'training from; with {} a pattern for --num_trials.')
  train: bool = setting(True, 'Train; --train=false evaluates.')
  validate: bool = setting(False, 'Use the validation split (held-out training data).')
  num_gpus: int = setting(1, 'Number of GPUs to split each batch over; 0: the CPU only, GPUs '
                          'hidden (e.g. to evaluate beside a training that uses them).')
  num_targets: int = setting(1, 'Targets per image: 2 for MultiMNIST.')
  num_trials: int = setting(1, 'Ensemble size: evaluates --checkpoint.format(i), i < N.')
  eval_size: int = setting(0, 'Evaluate at most this many examples (0: all of them).')
  # Additions.
  preset: Optional[str] = setting(None, 'Hparams preset (configs/hparams.py): '
                                  + ', '.join(PRESETS) + '; default: the --model\'s own '
                                  '(baseline, paper_baseline), else mnist.',
                                  choices=tuple(PRESETS))
  batch_size: Optional[int] = setting(None, 'Global batch size (default: 128 to train, 100 to '
                                      'evaluate).')
  seed: Optional[int] = setting(None, 'Random seed for weights and data order (0 to '
                                '2**32 - 1).')
  deterministic: bool = setting(False, 'Deterministic ops (needs --seed): identical runs; '
                                'turns TF32 off unless --tf32 is given.')
  tf32: Optional[bool] = setting(
      None, 'TF32 float32 matmuls and convolutions on Ampere/Hopper GPUs (10-bit mantissas, '
      'several times faster; logits move by about 1e-4). Default: on, off with --deterministic; '
      '--notf32 gives the original\'s float32 numbers.')
  allow_cpu: bool = setting(False, 'Run even though this machine has an NVIDIA driver and '
                            'TensorFlow sees no GPU (by default that stops the run).')
  jit_compile: Optional[bool] = setting(
      None, 'Compile the whole training step with XLA (default: on GPUs; on CPUs only the '
      'routing is compiled: whole-model XLA trained 26-42x slower there, docs/performance.md); '
      'false: no XLA at all.')
  conv_impl: str = setting(
      'auto', 'Primary-capsule convolution: matmul (patches x one matmul, faster on CPUs), '
      'conv (TF\'s kernels, cuDNN on GPUs) or auto (matmul on CPUs, conv on GPUs).',
      choices=CONV_IMPLS)
  mixed_precision: str = setting(
      'none', 'Mixed precision compute: ' + ', '.join(PRECISIONS) + '; routing and losses stay '
      'float32.', choices=tuple(PRECISIONS))
  log_every: int = setting(100, 'Log progress and write training scalars every N steps.')
  steps_per_loop: Optional[int] = setting(
      None, 'Training steps per compiled call (default: up to --log_every on GPUs, which a '
      'call per step leaves waiting on the host; 1 on CPUs); logs, saves and signals still '
      'happen at exact steps.')
  predictions_out: str = setting('', 'Evaluation writes logits, labels (and reconstructions) '
                                 'of every example to this .npz file.')
  export_dir: str = setting(
      '', 'With --train=false --checkpoint: write it to this folder as a SavedModel that needs '
      'only TensorFlow (serving_default: uint8 images -> scores, classes, ...).')
  overwrite: bool = setting(False, 'Let --export_dir replace a folder that is not empty.')
  perturb: bool = setting(False, 'With --checkpoint: write the paper\'s figure 4, the '
                          'reconstruction as each capsule dimension moves, to summary_dir.')
  eval_every: int = setting(
      0, 'Also evaluate the test split inside the training process every N steps and at the '
      'end (0: off), writing test/ events and result lines as --train=false does: for one '
      'device, where a second process would compete for it.')
  eval_timeout_secs: int = setting(6 * 3600, 'Continuous evaluation stops after waiting this '
                                   'long for a new checkpoint.')
  keep_checkpoints: int = setting(1000, 'Keep at most this many checkpoints (at least 1).')
  cpu_replicas: int = setting(0, 'Split the CPU into N logical devices and mirror over them '
                              '(to test multi-device runs without GPUs; not with --num_gpus).')
  distort: Optional[bool] = setting(None, 'Distort training images with the dataset\'s own '
                                    'augmentations (default: the dataset\'s choice, on for '
                                    'cifar10 and norb); false turns --augment off too.')
  augment: Optional[str] = setting(None, 'Training augmentations in order, comma-separated: '
                                   'crop, flip, brightness, contrast, rotate, or cifar10 (that '
                                   'dataset\'s); default: the dataset\'s own with --distort '
                                   '(docs/data.md "Augmentation").')
  generate: bool = setting(False, 'MNIST: shift and pair digits on the fly from the raw IDX '
                           'files in --data_dir instead of reading TFRecords.')
  # Options of image datasets (--dataset=folder or tfds:NAME; docs/data_own.md).
  image_size: Optional[str] = setting(None, 'folder/tfds: N or HxW to bring every image to '
                                      '(default: the first training image\'s size).')
  resize_mode: str = setting('resize', 'folder/tfds: how images reach --image_size: resize '
                             '(stretch), pad or crop (centered); input_data/datasets.py checks it.')
  channels: Optional[int] = setting(None, 'folder/tfds: 1 (grayscale) or 3 (RGB) (default: the '
                                    'first training image\'s).')
  download: bool = setting(False, 'tfds: download and prepare the dataset into --data_dir if it '
                           'is not there (off: never touch the network).')
  cluster: str = setting(
      'auto', 'Several machines: tf_config (TF_CONFIG), slurm (the srun job step\'s tasks), none, '
      'or auto (TF_CONFIG when set, else a SLURM step of several tasks, else none).',
      choices=CLUSTERS)
  slurm_port_base: Optional[int] = setting(
      None, 'SLURM: the first port of the tasks on each node (default: from SLURM_JOB_ID, so '
      'jobs sharing a node differ).')
  worker_timeout_secs: int = setting(
      600, 'Several machines (TF_CONFIG or SLURM): a worker waiting this long for another one in a '
      'collective stops with exit status 75, so a dead worker never hangs the others.')
  debug: bool = setting(False, 'Show full tracebacks instead of one-line errors.')
  # Resolved from --preset and --hparams_override; not a flag.
  hparams: HParams = HParams()

  @classmethod
  def flag_fields(cls):
    """The fields that are flags, in definition order."""
    return [f for f in dataclasses.fields(cls) if 'help' in f.metadata]

  @property
  def train_dir(self) -> str:
    return os.path.join(self.summary_dir, 'train')

  @property
  def test_dir(self) -> str:
    return os.path.join(self.summary_dir, 'test')

  @property
  def train_batch_size(self) -> int:
    return 128 if self.batch_size is None else self.batch_size

  @property
  def eval_batch_size(self) -> int:
    return 100 if self.batch_size is None else self.batch_size

  @property
  def use_tf32(self) -> bool:
    """--tf32 if given, else on unless --deterministic."""
    return not self.deterministic if self.tf32 is None else self.tf32

  @property
  def ensemble(self) -> bool:
    return '{}' in self.checkpoint

  def hparam_source(self, key: str) -> str:
    """Where hparam `key` got its value: '--hparams_override', '--preset=NAME' or 'the
    default'."""
    if key in override_keys(self.hparams_override):
      return '--hparams_override'
    preset = self.preset or default_preset(self.model)
    if key in override_keys(PRESETS[preset].overrides):
      return f'--preset={preset}'
    return 'the default'

  def validate_flags(self) -> 'RunConfig':
    """Raises UserError for values or combinations that cannot work; returns self."""
    def need(condition, message):
      if not condition:
        raise UserError(message)
    for field in self.flag_fields():
      choices, value = field.metadata['choices'], getattr(self, field.name)
      need(not choices or value is None or value in choices,
           f'--{field.name}={value} is not one of: {", ".join(choices or ())}')
    need(not (self.export_dir and (self.train or not self.checkpoint or self.ensemble)),
         '--export_dir needs --train=false and a single --checkpoint')
    check_name('model', self.model, MODELS)
    need(not (self.num_targets == 2 and self.dataset != 'mnist'),
         f'--num_targets=2 is MultiMNIST: it needs --dataset=mnist, not {self.dataset}')
    datasets.check_options(self.dataset, self.dataset_options())
    need(self.summary_dir or (not self.train and self.checkpoint and not self.perturb),
         '--summary_dir is required (checkpoints and events are written there)')
    for name in ('max_steps', 'save_step', 'log_every', 'steps_per_loop', 'num_trials',
                 'worker_timeout_secs', 'keep_checkpoints', 'batch_size'):
      value = getattr(self, name)
      need(value is None or value >= 1, f'--{name}={value} must be at least 1')
    for name in ('num_gpus', 'eval_size', 'cpu_replicas', 'eval_every', 'eval_timeout_secs'):
      need(getattr(self, name) >= 0, f'--{name}={getattr(self, name)} must not be negative')
    need(self.seed is None or 0 <= self.seed < 2**32,
         f'--seed={self.seed} must be from 0 to 2**32 - 1 (numpy\'s range)')
    need(not (self.cpu_replicas > 1 and self.num_gpus > 1),
         f'--cpu_replicas={self.cpu_replicas} and --num_gpus={self.num_gpus} both choose the '
         'devices: pass one of them')
    need(self.slurm_port_base is None or 1024 <= self.slurm_port_base <= 65000,
         f'--slurm_port_base={self.slurm_port_base} must be a port from 1024 to 65000')
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
    need(not (self.model != 'capsule' and self.perturb),
         f'--perturb needs the capsule model (--model={self.model} has no capsules to perturb)')
    need(not (self.perturb and not self.hparams.remake),
         f'--perturb needs the decoder, but remake=false comes from {self.hparam_source("remake")}'
         '; pass --hparams_override=remake=true')
    need(not (self.data_dir == BUILTIN_DATA and self.dataset != 'mnist'),
         f'--data_dir={BUILTIN_DATA} is MNIST digits: it needs --dataset=mnist')
    name = self.dataset.split(':')[0]
    need(self.data_dir, f'--data_dir is required for --dataset={self.dataset}: '
         + datasets.declared(name).prepare.format(dir=f'data/{name}')
         + f', or --data_dir={BUILTIN_DATA} for 5,000 packaged digits' * (name == 'mnist'))
    return self

  def dataset_options(self) -> dict:
    """The dataset options (input_data/datasets.py FLAG_OPTIONS) set to other than their
    default."""
    defaults = {f.name: f.default for f in self.flag_fields()}
    return {name: getattr(self, name) for name in datasets.FLAG_OPTIONS
            if getattr(self, name) != defaults[name]}

  def to_json(self) -> str:
    """The fields, and the training batch size they resolve to (no batch_size means 128)."""
    values = dict(dataclasses.asdict(self), train_batch_size=self.train_batch_size)
    return json.dumps(values, indent=2, sort_keys=True)
