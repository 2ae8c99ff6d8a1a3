"""The imported program: the IR module plus everything needed to run it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from streamdsl.dsl.types import TensorSpec
from streamdsl.sim.tensors import TensorFunction, compile_function


@dataclass(repr=False)
class ImportedProgram:
    """`module` holds one `func.func`; its arguments are the runtime `inputs` followed by the
    named `params` (parameters, buffers and folded constants, in that order), each argument
    carrying `{torch.name, torch.kind}` in its `arg_attrs`. `outputs` are the function results
    in the torch module's output order."""

    module: ModuleOp
    inputs: list[TensorSpec]
    params: dict[str, np.ndarray]
    param_kinds: dict[str, str]
    outputs: list[TensorSpec]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def func(self) -> func.FuncOp:
        return next(op for op in self.module.ops if isinstance(op, func.FuncOp))

    def reference(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        """Runs the IR on numpy with the runtime inputs `arrays` and the stored parameters."""
        if len(arrays) != len(self.inputs):
            names = ", ".join(s.name for s in self.inputs)
            raise TypeError(f"the program takes {len(self.inputs)} runtime inputs ({names}), got {len(arrays)}")
        return self.compiled(*arrays, *self.params.values())

    @cached_property
    def compiled(self) -> TensorFunction:
        """The function compiled once for the numpy interpreter of linalg on tensors."""
        return compile_function(self.func)

    def __str__(self) -> str:
        return str(self.module)

    def __repr__(self) -> str:
        n_bytes = sum(a.nbytes for a in self.params.values())
        return (f"<ImportedProgram @{self.func.sym_name.data}: {len(self.inputs)} inputs, "
                f"{len(self.params)} params ({n_bytes / 2**20:.1f} MiB), {len(self.outputs)} outputs>")
