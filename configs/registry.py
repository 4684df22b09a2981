"""Name -> builder registries, so flags like --model and --dataset need no if/elif chains."""

from typing import Callable, Dict, Iterable, Optional

from configs.errors import UserError


def check_name(kind: str, name: str, names: Iterable[str]):
  """Raises UserError listing `names` unless `name` is one of them."""
  if name not in names:
    raise UserError(f'unknown {kind} {name!r}; expected one of: {", ".join(sorted(names))}')


class Registry:
  """Builders registered by a decorator; an unknown name is a UserError listing the known ones.

  `names`, where given, are the only names that may register (declared without importing the
  builders, so flags are checked before they load).
  """

  def __init__(self, kind: str, names: Optional[Iterable[str]] = None):
    self.kind, self.allowed = kind, None if names is None else tuple(names)
    self._builders: Dict[str, Callable] = {}

  def register(self, name: str):
    """Decorator registering a class or function under `name`."""
    def wrap(builder):
      if name in self._builders or (self.allowed is not None and name not in self.allowed):
        raise ValueError(f'{self.kind} {name!r} registered twice or not declared')
      self._builders[name] = builder
      return builder
    return wrap

  def names(self):
    return sorted(self._builders)

  def get(self, name: str) -> Callable:
    check_name(self.kind, name, self._builders)
    return self._builders[name]
