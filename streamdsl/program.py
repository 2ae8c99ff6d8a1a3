"""A dataflow program: the IR module plus how to call it (the object `@sd.dataflow` returns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp

__all__ = ["Program"]


@dataclass
class Program:
    """`module` holds one `func.func` (the entry) whose body is a `dataflow.kernel` (docs/ir.md).

    `params` binds the trailing function arguments (weights) by name, in argument order.
    """

    module: ModuleOp
    name: str
    input_names: Sequence[str] = ()
    params: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def entry(self) -> FuncOp:
        for op in self.module.ops:
            if isinstance(op, FuncOp) and op.sym_name.data == self.name:
                return op
        raise LookupError(f"program {self.name!r}: no func.func @{self.name} in its module")

    def verify(self) -> Program:
        self.module.verify()
        return self

    def simulate(self, *arrays: np.ndarray, **options: object) -> tuple[np.ndarray, ...] | np.ndarray:
        """Run the IR on numpy with bounded FIFOs (the functional simulator)."""
        from streamdsl.sim.functional import simulate

        return simulate(self, *arrays, **options)

    def __str__(self) -> str:
        return str(self.module)
