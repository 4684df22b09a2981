"""Model hyperparameters: the original defaults, paper presets, and the `key=value` override parser."""

import dataclasses
from typing import Dict

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
    if self.learning_rate <= 0:
      raise UserError(f'hparam learning_rate={self.learning_rate} must be positive')

  def to_dict(self) -> Dict[str, object]:
    return dataclasses.asdict(self)


# Paper settings, by name. Each says what it reproduces; README.md gives the full command.
PRESETS: Dict[str, str] = {
    # MNIST, 3 routing iterations with reconstruction: 0.25% test error (paper table 1).
    'mnist': '',
    # MultiMNIST (36x36, two overlapping digits): 5.2% error (paper section 6).
    'multimnist': '',
    # CIFAR-10 ensemble member (24x24 crops): 10.6% error for an ensemble of 7 (paper section 7).
    'cifar10': 'num_prime_capsules=64,padding=SAME,leaky=true,remake=false',
    # smallNORB (48x48 resized, 32x32 crops, 2 views): 2.7% error (paper section 7).
    'norb': 'num_prime_capsules=64,padding=SAME,leaky=true,remake=false',
    # The original code's baseline (--model=baseline, its conv_model) as its README trains it:
    # the default hparams, so VALID padding and the margin loss.
    'baseline': '',
    # The paper's baseline CNN (--model=paper_baseline): 35.4M parameters, SAME padding,
    # cross-entropy; 0.39% MNIST test error in the paper (table 1). Command in README.md.
    'paper_baseline': 'loss_type=softmax,padding=SAME',
    # Small capsule net for the README quickstart: 600 steps of batch 64 on the built-in 4,000
    # digits give 97.0-97.3% test accuracy (seeds 1, 2) in about a minute on 2 CPU cores.
    'quickstart': ('conv1_filters=64,num_prime_capsules=8,remake=false,learning_rate=0.003,'
                   'decay_steps=100,decay_rate=0.75'),
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


def parse_overrides(overrides: str, base: HParams = HParams()) -> HParams:
  """Applies the original `key=value,key=value` string (booleans as true/false) to `base`."""
  types = {f.name: f.type for f in dataclasses.fields(HParams)}
  changes = {}
  for item in filter(None, (part.strip() for part in (overrides or '').split(','))):
    key, sep, text = item.partition('=')
    key = key.strip()
    if not sep:
      raise UserError(f'hparams override {item!r} is not key=value; valid keys and types: '
                      f'{_describe_keys()}')
    if key not in types:
      raise UserError(f'unknown hparam {key!r}; valid keys and types: {_describe_keys()}')
    changes[key] = _parse_value(key, text.strip(), types[key])
  return dataclasses.replace(base, **changes)


def make_hparams(preset: str = 'mnist', overrides: str = '') -> HParams:
  """The preset's hparams with `overrides` applied on top."""
  if preset not in PRESETS:
    raise UserError(f'unknown preset {preset!r}; expected one of: {", ".join(PRESETS)}')
  return parse_overrides(overrides, parse_overrides(PRESETS[preset]))
