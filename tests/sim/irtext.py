"""Writing dataflow programs as MLIR text (docs/ir.md) for the simulator tests.

`program(...)` wraps a kernel body in `func.func` + `dataflow.kernel`; `task(...)` writes one task
with an `itensor_empty` per output; `loop(...)` an `scf.for` with static bounds. SSA names inside
tasks may repeat between tasks (each task is its own region).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from xdsl.context import Context
from xdsl.dialects import get_all_dialects
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from streamdsl.dialects.dataflow import DATAFLOW
from streamdsl.itensor import itensor

_COUNT = itertools.count()


def context() -> Context:
    ctx = Context()
    for name, factory in get_all_dialects().items():
        ctx.register_dialect(name, factory)
    ctx.load_dialect(DATAFLOW)
    return ctx


def parse(text: str) -> ModuleOp:
    module = Parser(context(), text).parse_module()
    module.verify()
    return module


def ty(it: itensor) -> str:
    return str(it.to_ir())


def tile(it: itensor) -> str:
    return f"tensor<{'x'.join(map(str, it.tile))}x{it.dtype.name}>"


def tensor(shape: Sequence[int], dtype: str = "f32") -> str:
    return f"tensor<{'x'.join(map(str, shape))}x{dtype}>"


def program(name: str, inputs: Sequence[tuple], outputs: Sequence[Sequence[int]], body: str) -> ModuleOp:
    """`inputs` are (name, shape) or (name, shape, dtype). Kernel block args are `%<input>` (do not
    reuse those names inside tasks); the body ends with `dataflow.yield`."""
    in_types = [tensor(spec[1], *spec[2:]) for spec in inputs]
    out_types = [tensor(shape) for shape in outputs]
    names = [spec[0] for spec in inputs]
    params = ", ".join(f"%{n}_h: {t}" for n, t in zip(names, in_types))
    operands = ", ".join(f"%{n}_h" for n in names)
    block_args = ", ".join(f"%{n}: {t}" for n, t in zip(names, in_types))
    results = f"%res:{len(outputs)}" if len(outputs) > 1 else "%res"
    returned = ", ".join(f"%res#{i}" for i in range(len(outputs))) if len(outputs) > 1 else "%res"
    sig = f"({', '.join(in_types)}) -> ({', '.join(out_types)})"
    text = f"""
func.func @{name}({params}) -> ({', '.join(out_types)}) {{
  {results} = dataflow.kernel "{name}"({operands}) : {sig} {{
  ^bb0({block_args}):
{body}
  }}
  func.return {returned} : {', '.join(out_types)}
}}
"""
    return parse(text)


def task(name: str, ins: Sequence[tuple[str, itensor]], outs: Sequence[tuple[str, itensor]], body: str, attrs: str = "") -> str:
    """Block args: `%<in>_p` for inputs, `%<out>_o` for outputs; results are `%<out>`.
    The body must end with `dataflow.yield` of the final out chains."""
    empties = "\n".join(f"    %{o}_e = dataflow.itensor_empty : {ty(it)}" for o, it in outs)
    ins_s = ", ".join(f"%{n}" for n, _ in ins)
    ins_t = ", ".join(ty(it) for _, it in ins)
    outs_s = ", ".join(f"%{o}_e" for o, _ in outs)
    outs_t = ", ".join(ty(it) for _, it in outs)
    results = ", ".join(f"%{o}" for o, _ in outs)
    args = ", ".join([*(f"%{n}_p: {ty(it)}" for n, it in ins), *(f"%{o}_o: {ty(it)}" for o, it in outs)])
    attr_s = f" attributes {{{attrs}}}" if attrs else ""
    lhs = f"{results} = " if outs else ""
    arrow = f" -> {outs_t}" if outs else ""
    return f"""{empties}
    {lhs}dataflow.task "{name}" ins({ins_s} : {ins_t}) outs({outs_s} : {outs_t}){attr_s}{arrow} {{
    ^bb0({args}):
{body}
    }}"""


def loop(n: int, body: str, carried: Sequence[tuple[str, str, str]] = (), iv: str | None = None, results: str | None = None) -> str:
    """`scf.for %iv = 0 to n`; `carried` = (name, init, type); body ends with `scf.yield`."""
    k = next(_COUNT)
    iv = iv or f"iv{k}"
    head = f"      %lo{k} = arith.constant 0 : index\n      %hi{k} = arith.constant {n} : index\n      %st{k} = arith.constant 1 : index\n"
    res = f"%{results}{':' + str(len(carried)) if len(carried) > 1 else ''} = " if results else ""
    if carried:
        iters = ", ".join(f"%{name} = {init}" for name, init, _ in carried)
        types = ", ".join(t for _, _, t in carried)
        return f"{head}      {res}scf.for %{iv} = %lo{k} to %hi{k} step %st{k} iter_args({iters}) -> ({types}) {{\n{body}\n      }}"
    return f"{head}      scf.for %{iv} = %lo{k} to %hi{k} step %st{k} {{\n{body}\n      }}"


def map_task(name: str, ins: Sequence[tuple[str, itensor]], out: tuple[str, itensor], compute: str, attrs: str = "") -> str:
    """One token in from every input, one token out, per iteration. `compute` sees the input tiles
    as `%t0, %t1, ...` and defines `%r`."""
    o, it = out
    reads = "\n".join(f"        %t{j} = dataflow.itensor_read %{n}_p : {ty(t)} -> {tile(t)}" for j, (n, t) in enumerate(ins))
    body = f"""{reads}
{compute}
        %chain_w = dataflow.itensor_write %r, %chain : {tile(it)} -> {ty(it)}
        scf.yield %chain_w : {ty(it)}"""
    text = loop(it.num_tokens, body, [("chain", f"%{o}_o", ty(it))], iv="tok", results="chain_f")
    return task(name, ins, [out], f"{text}\n      dataflow.yield %chain_f : {ty(it)}", attrs)


def generic(ins: Sequence[tuple[str, str]], out: tuple[str, str], maps: Sequence[str], iterators: Sequence[str], body: str,
            result: str = "r") -> str:
    """A `linalg.generic` with a `tensor.empty` destination (unless `out` names an existing
    value); body block args are `%a0, %a1, ...` then `%o0`."""
    out_name, out_type = out
    elem = out_type.rsplit("x", 1)[-1].rstrip(">")
    init = ""
    if out_name == "":
        k = next(_COUNT)
        init = f"        %em{k} = tensor.empty() : {out_type}\n"
        out_name = f"%em{k}"
    arg_types = (t.rsplit("x", 1)[-1].rstrip(">") if t.startswith("tensor") else t for _, t in ins)
    args = ", ".join([*(f"%a{j}: {t}" for j, t in enumerate(arg_types)), f"%o0: {elem}"])
    maps_s = ", ".join(f"affine_map<{m}>" for m in maps)
    iters = ", ".join(f'"{it}"' for it in iterators)
    names, types = ", ".join(n for n, _ in ins), ", ".join(t for _, t in ins)
    return f"""{init}        %{result} = linalg.generic {{indexing_maps = [{maps_s}], iterator_types = [{iters}]}}
          ins({names} : {types}) outs({out_name} : {out_type}) {{
        ^bb0({args}):
{body}
        }} -> {out_type}"""
