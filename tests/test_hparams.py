"""Hparams: original defaults, key=value overrides, presets and their errors."""

import pytest

from configs import HParams, PRESETS, UserError, format_overrides, make_hparams, parse_overrides


def test_defaults_are_the_original_ones():
  hp = HParams()
  assert (hp.decay_rate, hp.decay_steps, hp.leaky, hp.learning_rate, hp.loss_type,
          hp.num_prime_capsules, hp.padding, hp.remake, hp.routing, hp.verbose) == (
              0.96, 2000, False, 0.001, 'margin', 32, 'VALID', True, 3, False)


def test_overrides_parse_each_type():
  hp = parse_overrides('routing=1, leaky=true,learning_rate=0.01,padding=SAME,remake=False')
  assert (hp.routing, hp.leaky, hp.learning_rate, hp.padding, hp.remake) == (
      1, True, 0.01, 'SAME', False)


def test_unknown_key_lists_valid_keys_and_types():
  with pytest.raises(UserError, match=r"unknown hparam 'routings'.*leaky:bool.*routing:int"):
    parse_overrides('routings=2')


@pytest.mark.parametrize('override, message', [
    ('routing=x', r"routing='x' is not a valid int"),
    ('leaky=maybe', r"leaky='maybe' is not a valid bool"),
    ('routing', r"'routing' is not key=value"),
    ('padding=same', r"padding='same' is not one of VALID, SAME"),
    ('routing=0', r'routing=0 must be at least 1'),
])
def test_bad_override_names_key_and_expectation(override, message):
  with pytest.raises(UserError, match=message):
    parse_overrides(override)


def test_cifar10_preset_is_the_papers_setting_and_overridable():
  hp = make_hparams('cifar10', 'routing=2')
  assert (hp.num_prime_capsules, hp.padding, hp.leaky, hp.remake, hp.routing) == (
      64, 'SAME', True, False, 2)


def test_every_preset_parses_and_unknown_preset_is_named():
  for name in PRESETS:
    make_hparams(name)
  with pytest.raises(UserError, match="unknown preset 'cifar'"):
    make_hparams('cifar')


def test_format_overrides_is_the_inverse_of_parse_overrides():
  text = format_overrides({'routing': 1, 'leaky': True, 'padding': 'SAME'})
  assert text == 'routing=1,leaky=true,padding=SAME'
  hp = parse_overrides(text)
  assert (hp.routing, hp.leaky, hp.padding) == (1, True, 'SAME')


def test_every_preset_says_what_it_reproduces_and_how():
  for name, preset in PRESETS.items():
    assert preset.reproduces and preset.time, name
    assert preset.command.startswith('python experiment.py'), name
    # A model's own preset is its default: --model=NAME alone selects it.
    assert name == 'mnist' or {f'--preset={name}', f'--model={name}'} & set(
        preset.command.split()), name
