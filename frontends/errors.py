"""Import errors that name the culprit and say what to do."""

from __future__ import annotations

from dataclasses import dataclass

from streamdsl.errors import StreamdslError


class FrontendError(StreamdslError):
    """Base class of the importer's errors."""


@dataclass(frozen=True)
class UnsupportedOp:
    op: str  # e.g. "aten._fft_r2c.default"
    node: str  # FX node name
    location: str  # "file.py:123 in forward" of the model source, or "<unknown location>"
    code: str = ""  # the source line, when the stack trace has it


class UnsupportedOpError(FrontendError):
    """Raised once per import with every op the importer cannot lower."""

    def __init__(self, ops: list[UnsupportedOp]):
        self.ops = ops
        lines = [f"{len(ops)} unsupported op(s) in the exported graph:"]
        for u in ops:
            lines.append(f"  {u.op} (node {u.node}) at {u.location}" + (f": {u.code}" if u.code else ""))
        names = sorted({u.op for u in ops})
        lines.append(
            f"Add a lowering for {', '.join(names)} to frontends/ops (one function registered with "
            "@lowers, see docs/frontends.md), or rewrite the model to avoid the op."
        )
        super().__init__("\n".join(lines))


class DynamicShapeError(FrontendError):
    """A dynamic dimension without a maximum: the accelerator needs static (maximum) shapes."""

    def __init__(self, dims: list[str]):
        self.dims = dims
        super().__init__(
            "dynamic shape(s) without a maximum hint: " + "; ".join(dims)
            + ". Export with static example shapes, or give each dynamic dim a maximum "
            "(torch.export.Dim(name, max=N)); the program is then specialised to the maximum."
        )


class ModelError(FrontendError, ValueError):
    """A model, its options or its weights do not fit together (names the option or tensor)."""


class DataDependentControlFlowError(FrontendError):
    """The model branches on tensor values, which a static dataflow graph cannot express."""

    def __init__(self, location: str, code: str, detail: str):
        self.location, self.code = location, code
        super().__init__(
            f"data-dependent control flow at {location}" + (f": {code}" if code else "")
            + f" ({detail}). A dataflow accelerator runs one static graph: compute both branches and select "
            "with torch.where, or make the condition depend on shapes only."
        )
