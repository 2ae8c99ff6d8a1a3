"""The HLS lint: emitted kernels are clean; each rule catches a bad snippet and names the culprit."""

from __future__ import annotations

import pytest

import streamdsl as sd
from hls_backend import emit_kernel
from hls_backend.lint import lint_cpp

from .cases import CASES

GOOD = """
#include "hls_stream.h"
static void src(const float* a, hls::stream<float>& out) { for (int i = 0; i < 4; ++i) out.write(a[i]); }
static void dst(hls::stream<float>& in, float* b) { for (int i = 0; i < 4; ++i) b[i] = in.read(); }
extern "C" void top(const float* a, float* b) {
#pragma HLS interface m_axi port=a bundle=gmem0 offset=slave
#pragma HLS interface m_axi port=b bundle=gmem1 offset=slave
#pragma HLS dataflow
  hls::stream<float, 2> s("s");
#pragma HLS stream variable=s depth=2
  src(a, s);
  dst(s, b);
}
"""


def _rules(code: str) -> list[tuple[str, str]]:
    return [(i.rule, i.message) for i in lint_cpp(code)]


@pytest.mark.parametrize("name", ["diamond", "fork_join", "tutorial02_converted", "split_sign"])
def test_emitted_kernels_are_clean(name: str) -> None:
    assert lint_cpp(emit_kernel(sd.compile(CASES[name]().program)).code) == []


def test_good_snippet_is_clean() -> None:
    assert lint_cpp(GOOD) == []


@pytest.mark.parametrize(
    ("edit", "rule", "culprit"),
    [
        (("for (int i = 0; i < 4; ++i) b[i]", "float* t = new float[4]; delete[] t; for (int i = 0; i < 4; ++i) b[i]"),
         "dynamic-memory", "`new`"),
        (("for (int i = 0; i < 4; ++i) out", "float* t = (float*)malloc(16); free(t); for (int i = 0; i < 4; ++i) out"),
         "dynamic-memory", "`malloc`"),
        (('#include "hls_stream.h"', '#include <vector>\n#include "hls_stream.h"\nstatic void f(std::vector<int>& v) { v[0] = 1; }'),
         "std-container", "std::vector"),
        (("out.write(a[i]); }", "out.write(a[i]); src(a, out); }"), "recursion", "src calls itself"),
        (("#pragma HLS stream variable=s depth=2\n", ""), "stream-depth", "stream s has no"),
        (("  dst(s, b);", "  dst(s, b);\n  dst(s, b);"), "stream-endpoints", "stream s has 2 reader processes (dst, dst)"),
        (("  src(a, s);\n", ""), "stream-endpoints", "stream s has 0 writer processes"),
        (("#pragma HLS interface m_axi port=b bundle=gmem1 offset=slave\n", ""), "interface", "pointer argument b of top"),
    ],
)
def test_rule_catches_bad_snippet(edit: tuple[str, str], rule: str, culprit: str) -> None:
    assert edit[0] in GOOD
    found = _rules(GOOD.replace(edit[0], edit[1], 1))
    assert any(r == rule and culprit in m for r, m in found), found


def test_indirect_recursion_and_comments() -> None:
    code = GOOD.replace(
        "static void src(",
        "static void g(int n);\nstatic void f(int n) { if (n) g(n - 1); }\nstatic void g(int n) { f(n); }\nstatic void src("
    )
    assert {m.split(" calls")[0] for r, m in _rules(code) if r == "recursion"} == {"function f", "function g"}
    # words in comments and strings are not code
    assert lint_cpp(GOOD.replace("extern", '// new std::vector: no\nstatic const char* k = "malloc(";\nextern')) == []
