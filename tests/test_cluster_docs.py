"""docs/cluster.md's job scripts: valid bash, SLURM options that mean what the text says, and
experiment.py commands whose flags this version accepts (they cannot run here)."""

import re
import shlex
import subprocess

import pytest

from tests import cli
from tests.test_docs import check_flags

DOC = (cli.ROOT / 'docs' / 'cluster.md').read_text()
SCRIPTS = [block for block in re.findall(r'```sh\n(.*?)```', DOC, re.S)
           if block.startswith('#!/bin/bash')]
# What each #SBATCH option of the scripts must look like.
OPTIONS = {'job-name': r'[\w-]+', 'nodes': r'\d+', 'ntasks': r'\d+', 'ntasks-per-node': r'\d+',
           'gres': r'gpu:\d+', 'cpus-per-task': r'\d+', 'time': r'\d+:\d\d:\d\d',
           'requeue': None, 'signal': r'TERM@\d+', 'output': r'\S+'}


def sbatch_options(script):
  options = {}
  for line in script.splitlines():
    if line.startswith('#SBATCH'):
      name, _, value = line.split(None, 1)[1].lstrip('-').partition('=')
      options[name] = value or None
  return options


def experiment_commands(script):
  """The flags of each `python experiment.py` in the script, shell variables filled in."""
  text = script.replace('\\\n', ' ')
  assignments = dict(re.findall(r'^(\w+)=(\S+)$', text, re.M))
  commands = []
  for line in text.splitlines():
    if 'experiment.py' in line:
      words = shlex.split(re.sub(r'\$(\w+)', lambda m: assignments[m.group(1)], line))
      commands.append([w for w in words[words.index('experiment.py') + 1:] if w != '&'])
  return commands


def test_there_is_a_one_node_and_a_four_node_script():
  nodes = sorted(int(sbatch_options(s)['nodes']) for s in SCRIPTS)
  assert nodes == [1, 4]


@pytest.mark.parametrize('script', SCRIPTS, ids=lambda s: sbatch_options(s)['job-name'])
def test_job_script_is_valid_bash_with_requeue_and_time_to_save(script, tmp_path):
  path = tmp_path / 'job.sh'
  path.write_text(script)
  subprocess.run(['bash', '-n', str(path)], check=True)
  options = sbatch_options(script)
  for name, value in options.items():
    assert name in OPTIONS, name
    assert (value is None) == (OPTIONS[name] is None), name
    assert value is None or re.fullmatch(OPTIONS[name], value), (name, value)
  assert 'requeue' in options and int(options['signal'].split('@')[1]) >= 60
  assert re.search(r'status -eq 143 \] \|\| \[ \$status -eq 75', script)  # requeue on both


@pytest.mark.parametrize('script', SCRIPTS, ids=lambda s: sbatch_options(s)['job-name'])
def test_job_script_commands_are_valid_experiment_flags(script):
  commands = experiment_commands(script)
  assert commands and any('--train=false' not in c for c in commands)
  for args in commands:
    settings = check_flags(args)
    assert settings['summary_dir'].startswith('/shared/')  # on the shared file system
