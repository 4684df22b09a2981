"""DatasetSpec: the static facts about a dataset's batches that a model is built from."""

import dataclasses
from typing import Optional, Tuple


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Static facts about a dataset's batches; label i is class_names[i] where names are known."""
  name: str
  height: int
  width: int
  depth: int
  num_classes: int
  num_targets: int = 1
  num_examples: Optional[int] = None  # of the split read, where known without a full pass
  class_names: Tuple[str, ...] = ()
