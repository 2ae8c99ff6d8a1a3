"""HLS coding rules checked on kernel C++ (the emitted kernel.cpp, or any similar source).

Rules (each finding names its rule, the line and the culprit):
  dynamic-memory     no new/delete/malloc/free in kernel code (hardware has no heap)
  std-container      no std::vector/deque/map/string/... in kernel code (not synthesizable)
  recursion          no function that calls itself, directly or through others
  stream-depth       every stream declared in the dataflow top has `#pragma HLS stream variable=s depth=D`
  stream-endpoints   every such stream has exactly one writer process and one reader process
  interface          every pointer argument of the extern "C" top has an m_axi interface pragma
  token-width        no stream carries words wider than MAX_TOKEN_BITS (1,024) bits: a wider FIFO word
                     costs ceil(width / 72) BRAM36 per 512 entries however shallow the FIFO is
  maxi-readers       every m_axi argument is passed to exactly one dataflow process (the canonical
                     dataflow form: one reader or writer per port; fork on chip instead)
  stream-polling     no empty() / full() / SD_POLL: a non-blocking stream access makes the design's
                     behaviour depend on timing (Vitis: non-deterministic, verifiable only in RTL)
  pipeline-ii        every `#pragma HLS pipeline` states its initiation interval (II=n)
  unroll-partition   every array an unrolled loop indexes with its variable is partitioned or reshaped
                     (`#pragma HLS array_partition variable=a` or `a.v`); loops inside a pipelined loop
                     are unrolled by Vitis, so they count too
  float-accumulator  no floating-point value accumulated across the iterations of a loop pipelined at an
                     II below the recurrence's latency at distance 1 (`acc += x`, or `acc = f(acc, x)` through
                     temporaries, where `acc` does not depend on the loop's variable; the adder's latency,
                     maximumf's for a compare-and-select such as sd_maximum): the loop then starts once
                     per that latency, not at its II; use interleaved partial sums

`lint_cpp(code, skip=...)` leaves out rules; `emit_project` runs every rule on the kernel it
writes and refuses a kernel that breaks one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streamdsl.opinfo import OPS

__all__ = ["FADD_LATENCY", "MAX_TOKEN_BITS", "RULES", "LintIssue", "lint_cpp", "lint_project"]

FADD_LATENCY = OPS["arith.addf"].latency  # cycles of a float adder: the shortest arithmetic float recurrence

MAX_TOKEN_BITS = 1024
RULES = (
    "dynamic-memory", "std-container", "recursion", "stream-depth", "stream-endpoints", "interface", "token-width",
    "maxi-readers", "stream-polling", "pipeline-ii", "unroll-partition", "float-accumulator",
)  # fmt: skip


@dataclass(frozen=True)
class LintIssue:
    rule: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: [{self.rule}] {self.message}"


_DYNAMIC = re.compile(r"\b(new|delete)\b|\b(malloc|calloc|realloc|free)\s*\(")
_CONTAINER = re.compile(r"\bstd::(vector|deque|list|forward_list|map|multimap|unordered_map|set|unordered_set|string"
                        r"|queue|stack|unique_ptr|shared_ptr|function)\b")
_FUNC = re.compile(r'(?:extern\s+"C?"\s+)?(?:static\s+)?(?:inline\s+)?void\s+(\w+)\s*\(([^)]*)\)\s*\{')
_STREAM_DECL = re.compile(r"hls::stream<[^;]*?>\s+(\w+)\s*(?:\([^;]*\))?\s*;")
_DEPTH_PRAGMA = re.compile(r"#pragma\s+HLS\s+stream\s+variable\s*=\s*(\w+)\s+depth\s*=\s*\d+", re.I)
_CALL = re.compile(r"^[ \t]*(\w+)[ \t]*\(([^;\n]*)\)[ \t]*;", re.M)  # a one-line call statement (a process)
_MAXI = re.compile(r"#pragma\s+HLS\s+interface\s+m_axi\s+port\s*=\s*(\w+)", re.I)


def _strip(code: str) -> str:
    """Comments and string literals blanked out, keeping line numbers (pragmas stay)."""

    def blank(m: re.Match[str]) -> str:
        text = m.group(0)
        if text.startswith('"'):
            return '""'
        return re.sub(r"[^\n]", " ", text)

    return re.sub(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"', blank, code, flags=re.S)


def _line(code: str, pos: int) -> int:
    return code.count("\n", 0, pos) + 1


@dataclass
class _Function:
    name: str
    params: list[str]  # parameter names
    body: str
    start: int  # offset of the body in the stripped code


def _functions(code: str) -> dict[str, _Function]:
    funcs: dict[str, _Function] = {}
    for m in _FUNC.finditer(code):
        depth, i = 1, m.end()
        while depth and i < len(code):
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        params = [p.strip().split()[-1].lstrip("*&") for p in m.group(2).split(",") if p.strip()]
        funcs[m.group(1)] = _Function(m.group(1), params, code[m.end() : i - 1], m.end())
    return funcs


def _split_args(text: str) -> list[str]:
    return [a.strip() for a in text.split(",") if a.strip()]


def lint_cpp(code: str, skip: frozenset[str] | set[str] = frozenset()) -> list[LintIssue]:
    """The rule violations of one kernel source (an empty list when it is clean), leaving out the
    rules named in `skip`."""
    if unknown := set(skip) - set(RULES):
        raise ValueError(f"lint_cpp: no rule named {sorted(unknown)[0]!r}; the rules are {', '.join(RULES)}")
    src = _strip(code)
    issues: list[LintIssue] = []
    for m in _DYNAMIC.finditer(src):
        issues.append(LintIssue("dynamic-memory", _line(src, m.start()),
                                f"`{m.group(0).strip('( ')}`: kernels cannot allocate memory at run time; use fixed-size arrays"))
    for m in _CONTAINER.finditer(src):
        issues.append(LintIssue("std-container", _line(src, m.start()), f"`{m.group(0)}` is not synthesizable; use a fixed-size array"))
    funcs = _functions(src)
    issues += _recursion(src, funcs)
    for top in (f for f in funcs.values() if "#pragma HLS dataflow" in f.body or _STREAM_DECL.search(f.body)):
        issues += _streams(src, top, funcs)
    issues += _interfaces(src, funcs)
    issues += _token_widths(src)
    issues += _polling(src)
    loops = _loops(src)
    issues += _pipeline_ii(src, loops)
    issues += _unroll_partition(src, loops, funcs)
    issues += _float_accumulators(src, loops, funcs)
    for top in (f for f in funcs.values() if "#pragma HLS dataflow" in f.body):
        issues += _maxi_readers(src, top, funcs)
    return sorted((i for i in issues if i.rule not in skip), key=lambda i: (i.line, i.rule))


_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*[(,]")  # an identifier called or passed on


def _calls(body: str, funcs: dict[str, _Function]) -> set[str]:
    return set(_CALLED.findall(body)) & funcs.keys()  # one scan of the body, not one per function


def _recursion(src: str, funcs: dict[str, _Function]) -> list[LintIssue]:
    graph = {name: _calls(f.body, funcs) for name, f in funcs.items()}
    issues = []
    for name in funcs:
        seen, stack = set(), list(graph[name])
        while stack:
            callee = stack.pop()
            if callee == name:
                issues.append(LintIssue("recursion", _line(src, funcs[name].start),
                                        f"function {name} calls itself (directly or indirectly); HLS needs a static call graph"))
                break
            if callee not in seen:
                seen.add(callee)
                stack.extend(graph.get(callee, ()))
    return issues


def _roles(func: _Function, param: str) -> set[str]:
    roles = set()
    if re.search(rf"\b{param}\s*\.\s*read\s*\(", func.body):
        roles.add("reader")
    if re.search(rf"\b{param}\s*\.\s*write\s*\(", func.body):
        roles.add("writer")
    return roles


def _streams(src: str, top: _Function, funcs: dict[str, _Function]) -> list[LintIssue]:
    issues = []
    decls = {m.group(1): top.start + m.start() for m in _STREAM_DECL.finditer(top.body)}
    pragmas = set(_DEPTH_PRAGMA.findall(top.body))
    endpoints: dict[str, dict[str, list[str]]] = {s: {"writer": [], "reader": []} for s in decls}
    for m in _CALL.finditer(top.body):
        callee, args = m.group(1), _split_args(m.group(2))
        if callee == "SD_DATAFLOW_PROCESS" and args:
            callee, args = args[0], args[1:]
        if callee not in funcs:
            continue
        for param, arg in zip(funcs[callee].params, args):
            if arg in endpoints:
                for role in _roles(funcs[callee], param):
                    endpoints[arg][role].append(callee)
    for stream, pos in decls.items():
        line = _line(src, pos)
        if stream not in pragmas:
            issues.append(LintIssue("stream-depth", line, f"stream {stream} has no `#pragma HLS stream variable={stream} depth=N`"))
        for role in ("writer", "reader"):
            procs = endpoints[stream][role]
            if len(procs) != 1:
                who = ", ".join(procs) if procs else "none"
                issues.append(LintIssue("stream-endpoints", line,
                                        f"stream {stream} has {len(procs)} {role} processes ({who}); Vitis needs exactly one"))
    return issues


def _interfaces(src: str, funcs: dict[str, _Function]) -> list[LintIssue]:
    issues = []
    for m in re.finditer(r'extern\s+"C?"\s+void\s+(\w+)\s*\(([^)]*)\)', src):
        func = funcs.get(m.group(1))
        if func is None:
            continue
        ported = set(_MAXI.findall(func.body))
        for param in m.group(2).split(","):
            if "*" in param and (name := param.strip().split()[-1].lstrip("*")) not in ported:
                issues.append(LintIssue("interface", _line(src, m.start()),
                                        f"pointer argument {name} of {m.group(1)} has no `#pragma HLS interface m_axi port={name}`"))
    return issues


# -- widths, polling, pipelines --------------------------------------------------------------------

_SCALAR_BITS = {
    "bool": 1, "char": 8, "int8_t": 8, "uint8_t": 8, "short": 16, "int16_t": 16, "uint16_t": 16, "half": 16,
    "sd_f16": 16, "sd_bf16": 16, "int": 32, "unsigned": 32, "int32_t": 32, "uint32_t": 32, "float": 32,
    "long": 64, "int64_t": 64, "uint64_t": 64, "double": 64,
}  # fmt: skip
_FLOATS = ("float", "double", "half", "sd_f16", "sd_bf16")
_STRUCT = re.compile(r"\bstruct\s+(\w+)\s*\{([^{}]*)\}\s*;")
_MEMBER = re.compile(r"([\w:<>, ]+?)\s+(\w+)\s*((?:\[\s*\d+\s*\])*)\s*;")
_AP = re.compile(r"^(?:ap_u?int|ap_u?fixed)\s*<\s*(\d+)")
_FIFO = re.compile(r"hls::stream<\s*([\w:]+(?:\s*<\s*\d+\s*>)?)\s*(?:,\s*\d+\s*)?>\s+(\w+)\s*[(;]")
_POLL = re.compile(r"\.\s*(empty|full)\s*\(\s*\)|\bSD_POLL\s*\(")
_PIPELINE = re.compile(r"#pragma\s+HLS\s+pipeline\b([^\n]*)", re.I)
_UNROLL = re.compile(r"#pragma\s+HLS\s+unroll\b", re.I)
_PARTITION = re.compile(r"#pragma\s+HLS\s+array_(?:partition|reshape)\b[^\n]*?\bvariable\s*=\s*(\w+)", re.I)
_ASSIGN = re.compile(r"(\b\w+(?:\s*(?:\.\s*\w+|\[[^\]=;]*\]))*)\s*([-+*/])?=(?!=)")
_FOR = re.compile(r"\bfor\s*\(\s*(?:const\s+)?(?:int|unsigned|long|size_t|auto)?\s*(\w+)\s*=[^;]*;[^;]*;[^)]*\)")


def _type_bits(ctype: str, structs: dict[str, int]) -> int | None:
    ctype = ctype.strip().removeprefix("const ").strip()
    if (m := _AP.match(ctype)) is not None:
        return int(m.group(1))
    return structs.get(ctype, _SCALAR_BITS.get(ctype.removeprefix("std::")))


def _struct_bits(src: str) -> dict[str, int]:
    """Bits of each struct whose members are scalars, ap types or arrays of them (as Vitis packs them)."""
    structs: dict[str, int] = {}
    for m in _STRUCT.finditer(src):
        total = 0
        for member in _MEMBER.finditer(m.group(2)):
            bits = _type_bits(member.group(1), structs)
            if bits is None:
                break
            for n in re.findall(r"\d+", member.group(3)):
                bits *= int(n)
            total += bits
        else:
            structs[m.group(1)] = total
    return structs


def _token_widths(src: str) -> list[LintIssue]:
    structs = _struct_bits(src)
    issues = []
    for m in _FIFO.finditer(src):
        bits = _type_bits(m.group(1), structs)
        if bits is not None and bits > MAX_TOKEN_BITS:
            issues.append(LintIssue("token-width", _line(src, m.start()),
                                    f"stream {m.group(2)} carries {m.group(1)} words of {bits} bits; at most {MAX_TOKEN_BITS} "
                                    "(send a tile as several beats)"))
    return issues


def _polling(src: str) -> list[LintIssue]:
    return [LintIssue("stream-polling", _line(src, m.start()),
                      f"`{m.group(1) or 'SD_POLL'}`: non-blocking stream access; read and write on a static schedule instead")
            for m in _POLL.finditer(src)]


@dataclass
class _Loop:
    var: str
    start: int  # offset of `for`
    body: tuple[int, int]  # offsets of the body (inside the braces)
    pragmas: list[str]  # the pragma lines directly in this loop's body (not in nested loops)
    parent: _Loop | None = None

    def pipelined(self) -> bool:
        return any(_PIPELINE.match(p) and "off" not in p.lower() for p in self.pragmas)

    def unrolled(self) -> bool:
        """Explicitly, or implicitly as a loop inside a pipelined loop (Vitis unrolls those)."""
        if any(_UNROLL.match(p) and "off" not in p.lower() for p in self.pragmas):
            return True
        parent = self.parent
        while parent is not None:
            if parent.pipelined():
                return True
            parent = parent.parent
        return False


def _statement_end(src: str, pos: int) -> int:
    """The end of the statement starting at `pos`: a braced block, a nested `for`, or up to `;`."""
    while pos < len(src) and src[pos].isspace():
        pos += 1
    if src.startswith("{", pos):
        depth, i = 1, pos + 1
        while depth and i < len(src):
            depth += {"{": 1, "}": -1}.get(src[i], 0)
            i += 1
        return i
    if (m := _FOR.match(src, pos)) is not None:
        return _statement_end(src, m.end())
    end = src.find(";", pos)
    return len(src) if end < 0 else end + 1


def _loops(src: str) -> list[_Loop]:
    loops: list[_Loop] = []
    for m in _FOR.finditer(src):
        loops.append(_Loop(m.group(1), m.start(), (m.end(), _statement_end(src, m.end())), []))
    for loop in loops:  # the innermost enclosing loop
        around = [o for o in loops if o.body[0] < loop.start < o.body[1]]
        loop.parent = max(around, key=lambda o: o.body[0]) if around else None
    for m in re.finditer(r"#pragma\s+HLS\s+(?:pipeline|unroll)\b[^\n]*", src, re.I):
        around = [o for o in loops if o.body[0] <= m.start() < o.body[1]]
        if around:
            max(around, key=lambda o: o.body[0]).pragmas.append(m.group(0))
    return loops


def _pipeline_ii(src: str, loops: list[_Loop]) -> list[LintIssue]:
    return [LintIssue("pipeline-ii", _line(src, m.start()), f"`{m.group(0).strip()}` has no II=n: state the interval it must reach")
            for m in _PIPELINE.finditer(src)
            if "off" not in m.group(1).lower() and not re.search(r"\bII\s*=\s*\d+", m.group(1), re.I)]


def _enclosing(funcs: dict[str, _Function], pos: int) -> _Function | None:
    return next((f for f in funcs.values() if f.start <= pos < f.start + len(f.body)), None)


def _array_refs(text: str) -> Iterator[tuple[str, str, str]]:
    """(base variable, accessed array as written, index expression) of each subscript: `a[i]`,
    `a.v[i]`, and both of `a[k].v[e]` (the array `a`, then its element's member `a.v`)."""
    for m in re.finditer(r"(?<![\w.])(\w+)(?=\s*(?:\.\s*\w+\s*)?\[)", text):
        base, path, i = m.group(1), m.group(1), m.end()
        while True:
            member = re.match(r"\s*\.\s*(\w+)(?=\s*\[)", text[i:])
            if member is not None:
                path, i = f"{path}.{member.group(1)}", i + member.end()
            bracket = re.match(r"\s*\[", text[i:])
            if bracket is None:
                break
            depth, start = 1, i + bracket.end()
            i = start
            while depth and i < len(text):
                depth += {"[": 1, "]": -1}.get(text[i], 0)
                i += 1
            yield base, path, text[start : i - 1]


def _unroll_partition(src: str, loops: list[_Loop], funcs: dict[str, _Function]) -> list[LintIssue]:
    issues, seen = [], set()
    for loop in (lp for lp in loops if lp.unrolled()):
        func = _enclosing(funcs, loop.start)
        scope = func.body if func is not None else src
        partitioned = set(_PARTITION.findall(scope)) | {
            m.group(1) + m.group(2) for m in re.finditer(
                r"#pragma\s+HLS\s+array_(?:partition|reshape)\b[^\n]*?\bvariable\s*=\s*(\w+)(\.\w+)", scope, re.I)
        }
        for base, array, index in _array_refs(src[loop.body[0] : loop.body[1]]):
            if re.search(rf"\b{loop.var}\b", index) and base not in partitioned and array not in partitioned \
                    and (loop.start, array) not in seen:
                seen.add((loop.start, array))
                issues.append(LintIssue("unroll-partition", _line(src, loop.start),
                                        f"unrolled loop over {loop.var} indexes {array} by it, but {array} is not partitioned "
                                        f"(`#pragma HLS array_partition variable={array} complete`)"))
    return issues


def _float_names(scope: str, structs: set[str]) -> set[str]:
    """Variables declared in `scope` with a floating-point scalar type or a struct of them."""
    kinds = "|".join((*_FLOATS, *structs)) or "float"
    return set(re.findall(rf"\b(?:{kinds})\s+(\w+)\s*(?:\[[^\]]*\]\s*)*(?:[=;{{(]|\s*=)", scope))


def _float_accumulators(src: str, loops: list[_Loop], funcs: dict[str, _Function]) -> list[LintIssue]:
    """A float location written in a pipelined loop's body, at an address that does not depend on
    the loop's variable, with a value computed from what the same iteration read there (through
    any chain of assignments before the write), carries a value to the next iteration at distance
    1: the loop cannot start more often than once per adder latency. A loop whose stated II is at
    least that latency meets it (its II was chosen for the recurrence)."""
    float_structs = {name for name, members in ((m.group(1), m.group(2)) for m in _STRUCT.finditer(src))
                     if re.search(rf"\b(?:{'|'.join(_FLOATS)})\s+\w+", members)}
    issues = []
    for loop in (lp for lp in loops if lp.pipelined()):
        if _stated_ii(loop) >= FADD_LATENCY:  # meets every float recurrence the rule knows
            continue
        func = _enclosing(funcs, loop.start)
        body = src[loop.body[0] : loop.body[1]]
        floats = _float_names(func.body if func is not None else src, float_structs) - _float_names(body, float_structs)
        statements = [(m, re.sub(r"\s+", "", m.group(1)), body[m.end() : _statement_end(body, m.end())])
                      for m in _ASSIGN.finditer(body)]
        done = set()
        for m, target, _ in statements:
            base = m.group(1).split("[")[0].split(".")[0].strip()
            if target in done or base not in floats or re.search(rf"\b{loop.var}\b", target):
                continue
            chain = [m.group(0)] if m.group(2) else _reads_back(statements, base, target)
            if chain and _stated_ii(loop) < _recurrence_latency(chain):
                done.add(target)
                issues.append(LintIssue("float-accumulator", _line(src, loop.body[0] + m.start()),
                                        f"{target} accumulates across iterations of the pipelined loop over {loop.var} "
                                        "(distance 1: II = the adder's latency); use interleaved partial sums and a tree"))
    return issues


def _stated_ii(loop: _Loop) -> int:
    for p in loop.pragmas:
        if _PIPELINE.match(p) and (m := re.search(r"\bII\s*=\s*(\d+)", p, re.I)):
            return int(m.group(1))
    return 1


def _reads_back(statements: list[tuple[re.Match[str], str, str]], base: str, target: str) -> list[str]:
    """The values on the way from a read of `base` to a write of `target` (of variable `base`) in
    the same iteration (assignments in text order carry the dependence); empty when the value
    written is not computed from `base`."""
    tainted, chain = {base}, []
    for m, written, value in statements:
        lhs = m.group(1).split("[")[0].split(".")[0].strip()
        if any(re.search(rf"(?<![\w.]){re.escape(name)}\b", value) for name in tainted):
            chain.append(value)
            if written == target:
                return chain
            tainted.add(lhs)
    return []


def _recurrence_latency(chain: list[str]) -> int:
    """Cycles of a float recurrence through `chain` (its values, or a compound assignment): a
    compare-and-select (sd_maximum / sd_minimum, `?:`) takes maximumf's latency; any arithmetic or
    other call at least an adder's."""
    plain = [re.sub(r"\[[^\]]*\]|\bsd_(?:maximum|minimum)\s*\(", "", value) for value in chain]
    selects = not any(re.search(r"[-+*/]|\w\s*\(", value) for value in plain)
    return OPS["arith.maximumf"].latency if selects else FADD_LATENCY


def _maxi_readers(src: str, top: _Function, funcs: dict[str, _Function]) -> list[LintIssue]:
    users: dict[str, list[str]] = {port: [] for port in _MAXI.findall(top.body)}
    for m in _CALL.finditer(top.body):
        callee, args = m.group(1), _split_args(m.group(2))
        if callee == "SD_DATAFLOW_PROCESS" and args:
            callee, args = args[0], args[1:]
        for arg in args:
            if arg in users:
                users[arg].append(callee)
    return [LintIssue("maxi-readers", _line(src, top.start),
                      f"m_axi argument {port} is used by {len(procs)} processes ({', '.join(procs)}); give each port one "
                      "process (load once, fork on chip)")
            for port, procs in users.items() if len(procs) > 1]


def lint_project(project_dir: Path | str, skip: frozenset[str] | set[str] = frozenset()) -> list[LintIssue]:
    return lint_cpp((Path(project_dir) / "kernel.cpp").read_text(), skip)
