"""Model importers: torch.export -> linalg-on-tensors (xDSL), and the Hugging Face model zoo.

    from frontends import hf, from_torch
    model = hf.build("llama", "tiny")
    module, inputs = hf.decode_step(model, past_len=8)
    prog = from_torch(module, *inputs)
    logits, *kv = prog.reference(*[t.numpy() for t in inputs])
"""

from frontends.errors import (
    DataDependentControlFlowError,
    DynamicShapeError,
    FrontendError,
    ModelError,
    UnsupportedOp,
    UnsupportedOpError,
)
from frontends.program import ImportedProgram, TensorSpec
from frontends.replace import kernel_op
from frontends.torch_import import from_torch, import_exported

__all__ = [
    "DataDependentControlFlowError",
    "DynamicShapeError",
    "FrontendError",
    "ImportedProgram",
    "ModelError",
    "TensorSpec",
    "UnsupportedOp",
    "UnsupportedOpError",
    "from_torch",
    "hf",
    "import_exported",
    "kernel_op",
]


def __getattr__(name: str):
    # The zoo imports transformers (slow); load it on first use.
    if name == "hf":
        import importlib

        return importlib.import_module("frontends.hf")
    raise AttributeError(name)
