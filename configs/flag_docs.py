"""docs/flags.md, generated from RunConfig's fields: `python -m configs.flag_docs > docs/flags.md`.

A test compares the file with markdown(), so the page cannot drift from the flags.
"""

from configs.run_config import RunConfig

COMMAND = 'python -m configs.flag_docs > docs/flags.md'


def _default(field) -> str:
  value = field.default
  if value is None:
    return 'unset'
  if isinstance(value, bool):
    return 'true' if value else 'false'
  return f'`{value!r}`' if isinstance(value, str) else str(value)


def markdown() -> str:
  """Every flag of experiment.py, in RunConfig's order: name, default, help."""
  lines = [
      '# Flags of experiment.py', '',
      'Generated from the fields of `configs/run_config.py`; after changing one, regenerate:', '',
      f'    {COMMAND}', '',
      '(a test fails until then). `python experiment.py --help` prints the same. Boolean flags',
      'also take `--noNAME`; "unset" means the run decides, as the help says. How the flags',
      'combine: [running.md](running.md).', '',
      '| flag | default | help |', '| --- | --- | --- |']
  for field in RunConfig.flag_fields():
    help_text = field.metadata['help'].replace('|', '\\|')
    lines.append(f'| `--{field.name}` | {_default(field)} | {help_text} |')
  return '\n'.join(lines) + '\n'


if __name__ == '__main__':
  print(markdown(), end='')
