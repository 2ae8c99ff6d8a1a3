"""Per-op lowerings from core ATen to linalg-on-tensors, table-driven (see `registry`)."""

from frontends.ops import attention, elementwise, index, linear, reduce, shape  # noqa: F401  (they register)
from frontends.ops.registry import LOWERINGS, lowers

__all__ = ["LOWERINGS", "lowers"]
