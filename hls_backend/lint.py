"""HLS coding rules checked on kernel C++ (the emitted kernel.cpp, or any similar source).

Rules (each finding names its rule, the line and the culprit):
  dynamic-memory     no new/delete/malloc/free in kernel code (hardware has no heap)
  std-container      no std::vector/deque/map/string/... in kernel code (not synthesizable)
  recursion          no function that calls itself, directly or through others
  stream-depth       every stream declared in the dataflow top has `#pragma HLS stream variable=s depth=D`
  stream-endpoints   every such stream has exactly one writer process and one reader process
  interface          every pointer argument of the extern "C" top has an m_axi interface pragma
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LintIssue", "lint_cpp", "lint_project"]


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


def lint_cpp(code: str) -> list[LintIssue]:
    """The rule violations of one kernel source (an empty list when it is clean)."""
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
    return sorted(issues, key=lambda i: (i.line, i.rule))


def _calls(body: str, funcs: dict[str, _Function]) -> set[str]:
    return {name for name in funcs if re.search(rf"\b{name}\s*[(,]", body)}


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


def lint_project(project_dir: Path | str) -> list[LintIssue]:
    return lint_cpp((Path(project_dir) / "kernel.cpp").read_text())
