"""Model hyperparameters: the original defaults, presets, and the `key=value` override parser."""

import dataclasses
import math
from typing import Dict, Optional

from configs.errors import UserError


@dataclasses.dataclass(frozen=True)
class HParams:
  """Hyperparameters of the capsule and baseline models, with the 2017 code's defaults.

  The last three keys are additions (not in the original); their defaults give the paper's model.
  """
  decay_rate: float = 0.96
  decay_steps: int = 2000
  leaky: bool = False
  learning_rate: float = 0.001
  loss_type: str = 'margin'
  num_prime_capsules: int = 32
  padding: str = 'VALID'
  remake: bool = True
  routing: int = 3
  verbose: bool = False
  conv1_filters: int = 256
  prime_atoms: int = 8
  class_atoms: int = 16

  def __post_init__(self):
    _check_choice('loss_type', self.loss_type, ('margin', 'softmax', 'sigmoid'))
    _check_choice('padding', self.padding, ('VALID', 'SAME'))
    for key in ('decay_steps', 'num_prime_capsules', 'routing', 'conv1_filters', 'prime_atoms',
                'class_atoms'):
      if getattr(self, key) < 1:
        raise UserError(f'hparam {key}={getattr(self, key)} must be at least 1')
    for key in ('learning_rate', 'decay_rate'):
      if not (math.isfinite(getattr(self, key)) and getattr(self, key) > 0):
        raise UserError(f'hparam {key}={getattr(self, key)} must be a finite number above 0')

  def to_dict(self) -> Dict[str, object]:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Preset:
  """Hparams overrides with what they reproduce, big_vision style: the result, its source, the
  time it takes, and the command (README.md "The paper's experiments" prepares the data)."""
  overrides: str
  reproduces: str
  command: str
  time: str = ''


# The original README's CIFAR-10 settings (also smallNORB's preset and the benchmark's row).
CIFAR10_OVERRIDES = 'num_prime_capsules=64,padding=SAME,leaky=true,remake=false'

PRESETS: Dict[str, Preset] = {
    'mnist': Preset(
        '', 'MNIST, 3 routing iterations with reconstruction: 0.25% test error (paper table 1)',
        'python experiment.py --data_dir=data/mnist --max_steps=300000 --summary_dir=runs/mnist',
        'about 30 minutes at 20,000 images/s on one large GPU (the goal; not yet measured here)'),
    'multimnist': Preset(
        '', 'MultiMNIST (36x36, two overlapping digits): 5.2% error (paper section 6). The '
        'hparams are MNIST\'s; --num_targets=2 and the data make it MultiMNIST',
        'python experiment.py --preset=multimnist --num_targets=2 --data_dir=data/mnist_raw '
        '--generate --max_steps=300000 --summary_dir=runs/multimnist',
        '300,000 steps at 44 images/s on 2 CPU cores (benchmarks/throughput.py): weeks; a GPU is '
        'needed, not yet measured here'),
    'cifar10': Preset(
        CIFAR10_OVERRIDES,
        'CIFAR-10 ensemble member (24x24 crops): 10.6% error for an ensemble of 7 (paper '
        'section 7); the settings of the original README\'s CIFAR-10 command',
        'python experiment.py --dataset=cifar10 --preset=cifar10 --data_dir=data/cifar10 '
        '--max_steps=600000 --summary_dir=runs/cifar0',
        '600,000 steps per member at 18 images/s on 2 CPU cores: a GPU is needed, not yet '
        'measured here'),
    'norb': Preset(
        CIFAR10_OVERRIDES,
        'smallNORB (48x48 resized, 32x32 crops, 2 views): 2.7% error (paper section 7). The '
        'paper and the original code give no smallNORB settings: CIFAR-10\'s are this '
        'project\'s choice',
        'python experiment.py --dataset=norb --preset=norb --data_dir=data/smallnorb '
        '--max_steps=300000 --summary_dir=runs/norb', 'a GPU is needed, not yet measured here'),
    'baseline': Preset(
        '', 'The original code\'s baseline (--model=baseline, its conv_model) as its README '
        'trains it: the default hparams, so VALID padding and the margin loss',
        'python experiment.py --model=baseline --data_dir=data/mnist '
        '--max_steps=300000 --summary_dir=runs/baseline',
        '300,000 steps at 52 images/s on 2 CPU cores: a GPU is needed, not yet measured here'),
    'paper_baseline': Preset(
        'loss_type=softmax,padding=SAME', 'The paper\'s baseline CNN (--model=paper_baseline, '
        '35.4M parameters, cross-entropy): 0.39% MNIST test error (paper table 1); SAME '
        'padding gives the paper\'s parameter count',
        'python experiment.py --model=paper_baseline '
        '--data_dir=data/mnist --max_steps=300000 --summary_dir=runs/paper_baseline',
        'a GPU is needed, not yet measured here'),
    'quickstart': Preset(
        'conv1_filters=64,num_prime_capsules=8,learning_rate=0.003,decay_steps=100,'
        'decay_rate=0.75', 'This project\'s small capsule net with its decoder for the README '
        'quickstart: at least 96% test accuracy on the built-in 4,000 + 1,000 digits',
        'python experiment.py --preset=quickstart --data_dir=builtin --batch_size=64 '
        '--max_steps=600 --seed=1 --summary_dir=runs/quickstart',
        '45 s of training on 2 CPU cores (97.4% test accuracy with --seed=1)'),
}


def _check_choice(key, value, choices):
  if value not in choices:
    raise UserError(f'hparam {key}={value!r} is not one of {", ".join(choices)}')


def _describe_keys() -> str:
  return ', '.join(f'{f.name}:{f.type if isinstance(f.type, str) else f.type.__name__}'
                   for f in dataclasses.fields(HParams))


def _parse_value(key: str, text: str, kind):
  kind_name = kind if isinstance(kind, str) else kind.__name__
  try:
    if kind_name == 'bool':
      if text.lower() in ('true', '1'):
        return True
      if text.lower() in ('false', '0'):
        return False
      raise ValueError(text)
    if kind_name == 'int':
      return int(text)
    if kind_name == 'float':
      return float(text)
    return text
  except ValueError:
    raise UserError(f'hparam {key}={text!r} is not a valid {kind_name}; valid keys and types: '
                    f'{_describe_keys()}') from None


def _items(overrides: str):
  """(item, key, '=' or '', value text) of each non-empty item of a `key=value,...` string."""
  for item in filter(None, (part.strip() for part in (overrides or '').split(','))):
    key, sep, text = item.partition('=')
    yield item, key.strip(), sep, text.strip()


def override_keys(overrides: str) -> set:
  """The keys a `key=value,key=value` string sets."""
  return {key for _, key, _, _ in _items(overrides)}


def parse_overrides(overrides: str, base: HParams = HParams()) -> HParams:
  """Applies the original `key=value,key=value` string (booleans as true/false) to `base`."""
  types = {f.name: f.type for f in dataclasses.fields(HParams)}
  changes = {}
  for item, key, sep, text in _items(overrides):
    if not sep:
      raise UserError(f'hparams override {item!r} is not key=value; valid keys and types: '
                      f'{_describe_keys()}')
    if key not in types:
      raise UserError(f'unknown hparam {key!r}; valid keys and types: {_describe_keys()}')
    changes[key] = _parse_value(key, text, types[key])
  return dataclasses.replace(base, **changes)


def format_overrides(values: Dict[str, object]) -> str:
  """The inverse of parse_overrides: {'routing': 1, 'leaky': True} -> 'routing=1,leaky=true'."""
  return ','.join(f'{k}={str(v).lower() if isinstance(v, bool) else v}' for k, v in values.items())


def default_preset(model: str) -> str:
  """A model's own preset (named after it: baseline, paper_baseline), else 'mnist'."""
  return model if model in PRESETS else 'mnist'


def make_hparams(preset: Optional[str] = None, overrides: str = '',
                 model: str = 'capsule') -> HParams:
  """The preset's hparams (by default the model's own) with `overrides` applied on top."""
  preset = preset or default_preset(model)
  if preset not in PRESETS:
    raise UserError(f'unknown preset {preset!r}; expected one of: {", ".join(PRESETS)}')
  return parse_overrides(overrides, parse_overrides(PRESETS[preset].overrides))
