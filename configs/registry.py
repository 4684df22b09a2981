"""Name -> builder registries, so flags like --model and --dataset need no if/elif chains."""

from typing import Callable, Dict

from configs.errors import UserError


class Registry:
  """Builders registered by a decorator; an unknown name is a UserError listing the known ones."""

  def __init__(self, kind: str):
    self.kind = kind
    self._builders: Dict[str, Callable] = {}

  def register(self, name: str):
    """Decorator registering a class or function under `name`."""
    def wrap(builder):
      if name in self._builders:
        raise ValueError(f'{self.kind} {name!r} registered twice')
      self._builders[name] = builder
      return builder
    return wrap

  def names(self):
    return sorted(self._builders)

  def get(self, name: str) -> Callable:
    if name not in self._builders:
      raise UserError(f'unknown {self.kind} {name!r}; expected one of: {", ".join(self.names())}')
    return self._builders[name]
