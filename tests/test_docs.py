"""README.md and docs/*.md: every `experiment.py` command they show takes flags this version
accepts (parsed by experiment.py's own flag definitions and checked as a run would be, without
starting TensorFlow: the commands themselves need data and hours), and every link between the
pages leads to a file; their shell blocks are valid bash."""

import re
import shlex
import subprocess

import pytest
from absl import flags

import experiment
from configs import RunConfig, make_hparams
from tests import cli

PAGES = [cli.ROOT / 'README.md', *sorted((cli.ROOT / 'docs').glob('*.md'))]
SHELL_OPERATORS = {';', '&', '&&', '|', '||', ')'}
ELLIPSIS = '...'  # "and the rest of the command": flags are checked, the combination is not


def shell_lines(text):
  """The lines of the page's ```sh blocks (continuations joined), and its inline `...`
  commands that pass experiment.py at least one flag."""
  lines = []
  for block in re.findall(r'```sh\n(.*?)```', text, re.S):
    lines += block.replace('\\\n', ' ').splitlines()
  prose = re.sub(r'```.*?```', '', text, flags=re.S)
  lines += re.findall(r'`([^`\n]*experiment\.py [^`\n]*--[^`\n]*)`', prose)
  return lines


def variables(lines):
  """Shell variables the page sets (RUN=...), and each `for NAME in A B ...` loop's first A."""
  found = {}
  for line in lines:
    found.update(re.findall(r'^(\w+)=(\S+)$', line.strip()))
    found.update(re.findall(r'\bfor (\w+) in (\S+)', line))
  return found


def experiment_commands(text):
  """(line, the words after experiment.py) for every experiment.py command of a page."""
  lines = shell_lines(text)
  values = variables(lines)
  commands = []
  for line in lines:
    if 'experiment.py' not in line:
      continue
    filled = re.sub(r'\$(\w+)', lambda m: values.get(m.group(1), m.group(0)), line)
    lexer = shlex.shlex(filled, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    start = next(i for i, w in enumerate(words) if w.endswith('experiment.py')) + 1
    args = []
    for word in words[start:]:
      if word in SHELL_OPERATORS:
        break
      args.append(word)
    if '--help' not in args:
      commands.append((' '.join(line.split()), args))
  return commands


def check_flags(args):
  """Parses `experiment.py ARGS` as experiment.py does and validates the RunConfig it makes;
  raises on an unknown flag, a bad value or an impossible combination. Returns the settings."""
  assert not any('$' in arg for arg in args), f'unresolved shell variable in {args}'
  complete = ELLIPSIS not in args
  values = flags.FlagValues()
  experiment.define_flags(values)
  rest = values(['experiment.py', *[arg for arg in args if arg != ELLIPSIS]])
  assert rest == ['experiment.py'], f'not flags: {rest[1:]}'
  settings = {field.name: values[field.name].value for field in RunConfig.flag_fields()}
  hparams = make_hparams(settings['preset'], settings['hparams_override'], settings['model'])
  if complete:
    RunConfig(**settings, hparams=hparams).validate_flags()
  return settings


COMMANDS = [(page.relative_to(cli.ROOT).as_posix(), line, args) for page in PAGES
            for line, args in experiment_commands(page.read_text())]


def test_the_readme_and_the_docs_show_experiment_commands():
  pages = {page for page, _, _ in COMMANDS}
  assert {'README.md', 'docs/running.md', 'docs/cluster.md', 'docs/data_own.md'} <= pages
  readme = [args for page, _, args in COMMANDS if page == 'README.md']
  assert len(readme) >= 10  # the quickstart's two, the paper's experiments


@pytest.mark.parametrize('page, line, args', COMMANDS,
                         ids=[f'{page}:{i}' for i, (page, _, _) in enumerate(COMMANDS)])
def test_documented_experiment_command_has_valid_flags(page, line, args):
  try:
    check_flags(args)
  except Exception as e:  # pylint: disable=broad-except
    raise AssertionError(f'{page}: {line}\n{type(e).__name__}: {e}') from e


def test_a_documented_command_with_a_wrong_flag_or_value_fails():
  with pytest.raises(flags.Error):
    check_flags(['--max_step=10', '--summary_dir=runs/x'])
  with pytest.raises(flags.Error):
    check_flags(['--max_steps=ten', '--summary_dir=runs/x'])
  with pytest.raises(Exception, match='num_targets'):
    check_flags(['--num_targets=3', '--summary_dir=runs/x'])
  with pytest.raises(AssertionError, match='unresolved'):
    check_flags(['--seed=$i', '--summary_dir=runs/x'])


def test_shell_variables_and_loops_are_filled_in():
  text = ('```sh\nRUN=/shared/runs/a\nfor i in 3 4; do python experiment.py --seed=$i '
          '--summary_dir=$RUN/$i; done\n```\n')
  assert experiment_commands(text) == [
      (text.splitlines()[2], ['--seed=3', '--summary_dir=/shared/runs/a/3'])]


@pytest.mark.parametrize('page', PAGES, ids=lambda page: page.name)
def test_links_between_pages_lead_to_files(page):
  prose = re.sub(r'```.*?```', '', page.read_text(), flags=re.S)
  targets = re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', prose)
  local = [t for t in targets if '://' not in t]
  missing = [t for t in local if not (page.parent / t).exists()]
  assert not missing, f'{page.name} links to missing files: {missing}'


@pytest.mark.parametrize('page', PAGES, ids=lambda page: page.name)
def test_shell_blocks_are_valid_bash(page, tmp_path):
  for i, block in enumerate(re.findall(r'```sh\n(.*?)```', page.read_text(), re.S)):
    path = tmp_path / f'block{i}.sh'
    path.write_text(block)
    subprocess.run(['bash', '-n', str(path)], check=True)
