"""torch.export -> core ATen -> linalg-on-tensors (xDSL).

`from_torch(module, *example_args)` exports the module, decomposes it to core ATen, folds every
subgraph that depends on neither the runtime inputs nor the parameters (masks, RoPE tables,
aranges: evaluated with torch), and lowers the rest op by op through the `frontends.ops` table.
Parameters stay named function arguments; folded tensors become named constant arguments
(splats become `linalg.fill`).
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.fx
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind
from torch.fx import Node
from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode
from torch.fx.node import map_arg
from torch.utils._sympy.numbers import int_oo
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, IntegerType, ModuleOp, StringAttr, TensorType
from xdsl.ir import Block, Region, SSAValue

from frontends.errors import (
    DataDependentControlFlowError,
    DynamicShapeError,
    FrontendError,
    ModelError,
    UnsupportedOp,
    UnsupportedOpError,
)
from frontends.ops import LOWERINGS
from frontends.ops.registry import TORCH_TO_XDSL, element_type
from frontends.program import ImportedProgram, TensorSpec
from frontends.replace import replacing
from streamdsl.dtypes import TENSOR_DTYPES, dtype_from_ir
from streamdsl.irbuild import IRBuilder
from streamdsl.sim.tensors import no_gc

aten = torch.ops.aten

# Side-effect-only checks that carry no data.
IGNORED = {
    aten._assert_tensor_metadata.default,
    aten._assert_scalar.default,
    aten.sym_constrain_range_for_size.default,
    aten._assert_async.msg,
}

_KINDS = {
    InputKind.USER_INPUT: "input",
    InputKind.PARAMETER: "parameter",
    InputKind.BUFFER: "buffer",
    InputKind.CONSTANT_TENSOR: "constant",
}


def from_torch(module: torch.nn.Module, *args: torch.Tensor, dynamic_shapes=None,
               name: str = "forward", input_names: Sequence[str] | None = None,
               replace: Mapping[Callable[..., Any], Callable[..., Any]] | None = None) -> ImportedProgram:
    """Imports `module` called on `args` (static shapes, or dynamic ones with a maximum).

    Runtime inputs are named after `input_names`, else the module's `input_names` attribute,
    else the argument names of its `forward`. `replace` maps torch functions the model calls
    (say `torch.nn.functional.scaled_dot_product_attention`) to functions run instead while it
    is exported, typically calling a DSL kernel made a torch op by `kernel_op` (frontends/replace.py)."""
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    if not args:
        raise ModelError(
            f"from_torch({type(module).__name__}): give example inputs, from_torch(model, *tensors); the "
            "importer traces the model on them and specialises the program to their shapes"
        )
    if bad := [i for i, a in enumerate(args) if not isinstance(a, torch.Tensor)]:
        raise ModelError(f"from_torch: example input(s) {bad} are not torch tensors; pass tensors only")
    # torch.export gives inputs that share memory one placeholder: the program would read one for both.
    args = tuple(a.clone() if any(a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() for b in args[:i])
                 else a for i, a in enumerate(args))
    with no_gc(), replacing(replace):
        return _from_torch(module, args, dynamic_shapes, name, input_names)


def _from_torch(module: torch.nn.Module, args: tuple, dynamic_shapes, name: str,
                input_names: Sequence[str] | None) -> ImportedProgram:
    names = input_names or getattr(module, "input_names", None)
    # Recording a stack trace per node costs about a quarter of the export time; the traces only
    # serve error messages, so an import that fails is redone with them.
    t0 = time.perf_counter()
    with _stack_traces(False):
        ep = _export(module, tuple(args), dynamic_shapes)
        t1 = time.perf_counter()
        # Decomposing re-traces the whole graph (~2 ms per node); a graph whose ops all have
        # lowerings already is imported as exported.
        if _Importer(ep).needs_decomposition():
            ep = _decompose(ep)
    t2 = time.perf_counter()
    try:
        prog = import_exported(ep, name, names)
    except UnsupportedOpError:
        prog = None
    if prog is None:
        with _stack_traces(True):
            ep = _decompose(_export(module, tuple(args), dynamic_shapes))
        prog = import_exported(ep, name, names)  # raises again, now naming source lines
    prog.timings = {"export": t1 - t0, "decompose": t2 - t1, "import": time.perf_counter() - t2}
    return prog


# Ops lowered as a whole although core ATen decomposes them: scaled_dot_product_attention's
# decomposition guards fully masked rows with `any` / `full_like`, which have no lowering.
PRESERVED = (aten.scaled_dot_product_attention.default,)


def _decompose(ep: ExportedProgram) -> ExportedProgram:
    table = torch.export.default_decompositions()
    for op in PRESERVED:
        table.pop(op, None)
    return ep.run_decompositions(table)


@contextmanager
def _stack_traces(enabled: bool):
    saved = torch.fx.config.do_not_emit_stack_traces
    torch.fx.config.do_not_emit_stack_traces = not enabled
    try:
        yield
    finally:
        torch.fx.config.do_not_emit_stack_traces = saved


def _export(module: torch.nn.Module, args: tuple, dynamic_shapes) -> ExportedProgram:
    try:
        ep = torch.export.export(module, args, dynamic_shapes=dynamic_shapes, strict=False)
    except GuardOnDataDependentSymNode as err:
        raise _data_dependent(err) from None
    if dynamic_shapes is None:
        return ep
    maxima = _dynamic_maxima(ep)
    # The accelerator has static shapes: re-export at the maximum of every dynamic dim.
    resized = tuple(_resize(a, maxima[i]) if i in maxima else a for i, a in enumerate(args))
    return torch.export.export(module, resized, strict=False)


def _data_dependent(err: Exception) -> DataDependentControlFlowError:
    """Name the model's source line: the innermost frame of the traceback outside torch."""
    torch_dir = str(Path(torch.__file__).parent)
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith(torch_dir)]
    frame = frames[-1] if frames else None
    location = f"{frame.filename}:{frame.lineno} in {frame.name}" if frame else "<unknown location>"
    detail = str(err).splitlines()[0] if str(err) else type(err).__name__
    return DataDependentControlFlowError(location, (frame.line or "") if frame else "", detail)


def _dynamic_maxima(ep: ExportedProgram) -> dict[int, dict[int, int]]:
    """{user input index: {dim: maximum}}; raises DynamicShapeError for unbounded dims."""
    users = [s.arg.name for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    maxima: dict[int, dict[int, int]] = {}
    unbounded: list[str] = []
    for i, name in enumerate(users):
        for d, size in enumerate(nodes[name].meta["val"].shape):
            if isinstance(size, int):
                continue
            upper = ep.range_constraints[size.node.expr].upper
            if upper == int_oo or int(upper) >= 2**31:  # torch's "no maximum"
                unbounded.append(f"input {name!r} dim {d} ({size})")
            else:
                maxima.setdefault(i, {})[d] = int(upper)
    if unbounded:
        raise DynamicShapeError(unbounded)
    return maxima


def _resize(t: torch.Tensor, dims: dict[int, int]) -> torch.Tensor:
    shape = [dims.get(d, s) for d, s in enumerate(t.shape)]
    return torch.zeros(shape, dtype=t.dtype)


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def source_location(node: Node) -> tuple[str, str]:
    """("file:line in function", source line) of the innermost frame of the node's trace."""
    trace = node.meta.get("stack_trace") or ""
    lines = trace.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if m := _FRAME.search(lines[i]):
            code = lines[i + 1].strip() if i + 1 < len(lines) and not _FRAME.search(lines[i + 1]) else ""
            return f"{m.group(1)}:{m.group(2)} in {m.group(3)}", code
    return "<unknown location>", ""


class _Importer:
    def __init__(self, ep: ExportedProgram, input_names: Sequence[str] | None = None):
        self.ep = ep
        self.input_names = list(input_names or [])
        self.graph = ep.graph_module.graph
        specs = {s.arg.name: s for s in ep.graph_signature.input_specs if hasattr(s.arg, "name")}
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        self.kinds = {n: _KINDS.get(specs[n.name].kind, "input") for n in placeholders}
        self.targets = {n: specs[n.name].target for n in self.kinds}
        self.state = {**ep.state_dict, **ep.constants}
        self.live = self._live()
        self.foldable = self._foldable()
        self.folded: dict[Node, object] = {}
        self.env: dict[Node, object] = {}
        self.block = Block()
        self.builder = IRBuilder(self.block)
        self.args: list[tuple[str, str, np.ndarray | None]] = []  # (name, kind, value) per func arg

    def _live(self) -> set[Node]:
        """Nodes an output depends on: the rest (a model's unused mask or position code, and the
        checks on it) is neither lowered nor required to have a lowering."""
        live: set[Node] = set()
        todo = [n for n in self.graph.nodes if n.op == "output"]
        while todo:
            n = todo.pop()
            if n not in live:
                live.add(n)
                todo.extend(n.all_input_nodes)
        return live

    def _foldable(self) -> set[Node]:
        """Nodes computable from constants alone (not from runtime inputs or parameters)."""
        out: set[Node] = set()
        for n in self.graph.nodes:
            if n.op == "placeholder" and self.kinds[n] in ("buffer", "constant"):
                out.add(n)
            elif n.op == "call_function" and n.target not in IGNORED and all(i in out for i in n.all_input_nodes):
                out.add(n)
        return out

    def check_supported(self) -> None:
        """One error listing every op without a lowering and every unsupported dtype."""
        missing = []
        for n in self.graph.nodes:
            if n.op != "call_function" or n in self.foldable or n.target in IGNORED or n not in self.live:
                continue
            if n.target not in LOWERINGS:
                missing.append(UnsupportedOp(str(n.target), n.name, *source_location(n)))
            elif bad := [d for d in map(_dtype, [n, *n.all_input_nodes]) if d and d not in TORCH_TO_XDSL]:
                missing.append(UnsupportedOp(f"{n.target} on {bad[0]}", n.name, *source_location(n)))
        if missing:
            raise UnsupportedOpError(missing)

    def needs_decomposition(self) -> bool:
        """True unless every op is pure and either folded, ignored or in the lowering table
        (a graph straight from torch.export may hold mutations, submodules and composite ops)."""
        for n in self.graph.nodes:
            if n.op in ("placeholder", "output"):
                continue
            if n.op != "call_function" or _mutates(n):
                return True
            if n in self.live and n not in self.foldable and n.target not in IGNORED and n.target not in LOWERINGS:
                return True
        return False

    # -- values ---------------------------------------------------------------------------------
    def fold(self, n: Node) -> object:
        if n not in self.folded:
            if n.op == "placeholder":
                self.folded[n] = self.state[self.targets[n]]
            else:
                args, kwargs = map_arg((n.args, n.kwargs), self.fold)
                with torch.no_grad():
                    self.folded[n] = n.target(*args, **kwargs)
        return self.folded[n]

    def value(self, n: Node) -> object:
        if n not in self.env:
            if n not in self.foldable:
                raise FrontendError(f"node {n.name} used before it is defined")
            self.env[n] = self.materialise(n)
        return self.env[n]

    def materialise(self, n: Node) -> object:
        val = self.fold(n)
        if not isinstance(val, torch.Tensor):
            return val
        shape, elt = list(val.shape), element_type(val.dtype)
        flat = val.detach().reshape(-1)
        if flat.numel() == 0:
            return self.builder.empty(shape, elt)
        if bool((flat == flat[0]).all()):
            return self.builder.fill(flat[0].item(), shape, elt)
        kind = self.kinds.get(n, "constant")
        name = self.targets[n] if n in self.targets else f"folded.{n.name}"
        return self.add_arg(n.name, name, kind, val)

    def add_arg(self, hint: str, name: str, kind: str, val: torch.Tensor | None, meta=None) -> SSAValue:
        t = val if val is not None else meta
        elt = element_type(t.dtype)
        if (bits := getattr(val, "int_bits", None)) is not None and t.dtype == torch.int8:
            elt = IntegerType(bits)  # sub-byte integers (int4 weights) held in int8 storage: torch has no int4 tensors
        arg = self.block.insert_arg(TensorType(elt, list(t.shape)), len(self.block.args))
        # xDSL drops a trailing `_<digits>` from names (its uniquing suffix): keep it as `.<digits>`.
        arg.name_hint = re.sub(r"_(\d+)$", r".\1", re.sub(r"[^A-Za-z0-9_.]", "_", hint))
        array = None if val is None else val.detach().cpu().numpy()
        self.args.append((name, kind, array))
        return arg

    # -- lowering -------------------------------------------------------------------------------
    def run(self, name: str) -> ImportedProgram:
        self.check_supported()
        outputs: list[SSAValue] = []
        for n in self.graph.nodes:
            if n.op == "placeholder":
                self.placeholder(n)
            elif n.op == "call_function" and n in self.live and n not in self.foldable and n.target not in IGNORED:
                args, kwargs = map_arg((n.args, n.kwargs), self.value)
                self.env[n] = LOWERINGS[n.target](self.builder, n, *args, **kwargs)
            elif n.op == "output":
                outputs = [self.value(o) for o in self._user_outputs(n)]
        return self.finish(name, outputs)

    def placeholder(self, n: Node) -> None:
        kind = self.kinds[n]
        if kind == "input":
            i = sum(1 for _, k, _ in self.args if k == "input")
            name = self.input_names[i] if i < len(self.input_names) else n.name
            self.env[n] = self.add_arg(name, name, kind, None, meta=n.meta["val"])
        elif kind == "parameter" and n.users:
            self.env[n] = self.add_arg(n.name, self.targets[n], kind, self.state[self.targets[n]])

    def _user_outputs(self, n: Node) -> list[Node]:
        outs = list(n.args[0]) if isinstance(n.args[0], (list, tuple)) else [n.args[0]]
        kinds = [s.kind for s in self.ep.graph_signature.output_specs]
        if any(k != OutputKind.USER_OUTPUT for k in kinds):
            raise FrontendError("the module mutates buffers or inputs: the importer handles pure modules only")
        for o in outs:
            if not isinstance(o, Node) or not isinstance(o.meta.get("val"), torch.Tensor):
                raise FrontendError(f"output {o!r} is not a tensor: return tensors only")
        return outs

    def finish(self, name: str, outputs: list[SSAValue]) -> ImportedProgram:
        # Runtime inputs first, then parameters, buffers and folded constants.
        order = sorted(range(len(self.args)), key=lambda i: self.args[i][1] != "input")
        block = self._reorder_args(order)
        self.block = block
        block.add_op(func.ReturnOp(*outputs))
        ordered = [self.args[i] for i in order]
        attrs = ArrayAttr([DictionaryAttr({"torch.name": StringAttr(nm), "torch.kind": StringAttr(kind)})
                           for nm, kind, _ in ordered])
        fn = func.FuncOp(name, ([a.type for a in block.args], [v.type for v in outputs]), Region(block),
                         arg_attrs=attrs)
        module = ModuleOp([fn])
        module.verify()
        inputs = [_spec(nm, a) for a, (nm, kind, _) in zip(block.args, ordered) if kind == "input"]
        params = {nm: arr for nm, kind, arr in ordered if kind != "input"}
        kinds = {nm: kind for nm, kind, _ in ordered if kind != "input"}
        outs = [_spec(f"output{i}", v) for i, v in enumerate(outputs)]
        return ImportedProgram(module, inputs, params, kinds, outs)

    def _reorder_args(self, order: list[int]) -> Block:
        """A new block whose args follow `order`, with the body moved over."""
        old = self.block
        new = Block(arg_types=[old.args[i].type for i in order])
        for new_arg, i in zip(new.args, order):
            new_arg.name_hint = old.args[i].name_hint
            old.args[i].replace_all_uses_with(new_arg)
        for op in list(old.ops):
            op.detach()
            new.add_op(op)
        return new


def _mutates(n: Node) -> bool:
    """In-place or out= ops, except `detach_` (it only drops autograd history)."""
    target = n.target
    return (isinstance(target, torch._ops.OpOverload) and target._schema.is_mutable
            and target is not aten.detach_.default)


def _dtype(n: Node) -> torch.dtype | None:
    val = n.meta.get("val")
    return val.dtype if isinstance(val, torch.Tensor) else None


def _spec(name: str, v: SSAValue) -> TensorSpec:
    return TensorSpec(dtype_from_ir(v.type.get_element_type(), TENSOR_DTYPES), tuple(v.type.get_shape()), name)


def import_exported(ep: ExportedProgram, name: str = "forward",
                    input_names: Sequence[str] | None = None) -> ImportedProgram:
    """Imports an already exported and decomposed program."""
    return _Importer(ep, input_names).run(name)
