"""The HLS lint: emitted kernels are clean; each rule catches a bad snippet and names the culprit."""

from __future__ import annotations

import pytest

import streamdsl as sd
from hls_backend import emit_kernel
from hls_backend.lint import RULES, lint_cpp

from .cases import CASES

GOOD = """
#include "hls_stream.h"
struct t { float v[64]; };
struct wide { float v[64]; };
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


@pytest.mark.parametrize("name", ["diamond", "fork_join", "tutorial02_converted", "split_sign", "softmax", "layernorm", "transpose"])
def test_emitted_kernels_are_clean(name: str) -> None:
    """Every rule: emit_project refuses a kernel that breaks any of them."""
    assert lint_cpp(emit_kernel(sd.compile(CASES[name]().program)).code) == []


def test_good_snippet_is_clean() -> None:
    assert lint_cpp(GOOD) == []


BAD = [  # (edit of GOOD, rule, culprit named)
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
        (("hls::stream<float, 2> s(", "hls::stream<wide, 2> s("), "token-width", "stream s carries wide words of 2048 bits"),
        (("hls::stream<float, 2> s(", "hls::stream<ap_uint<1056>, 2> s("), "token-width", "1056 bits"),
        (("  dst(s, b);", "  dst(s, b);\n  src(a, s2);\n  dst(s2, b2);"), "maxi-readers",
         "m_axi argument a is used by 2 processes (src, src)"),
        (("out.write(a[i]);", "if (!out.full()) out.write(a[i]);"), "stream-polling", "`full`"),
        (("b[i] = in.read();", "if (!in.empty()) b[i] = in.read();"), "stream-polling", "`empty`"),
        (("out.write(a[i]);", "{\n#pragma HLS pipeline\n out.write(a[i]); }"), "pipeline-ii", "`#pragma HLS pipeline` has no II"),
        (("out.write(a[i]);", "{\n#pragma HLS pipeline II=1\n t x; for (int l = 0; l < 64; ++l) x.v[l] = a[i]; out.write(x.v[0]); }"),
         "unroll-partition", "indexes x.v by it, but x.v is not partitioned"),
        (("out.write(a[i]);",
          "{ t p[2];\n for (int e = 0; e < 64; ++e) {\n#pragma HLS unroll\n p[1].v[e] = a[i]; }\n out.write(p[1].v[0]); }"),
         "unroll-partition", "indexes p.v by it"),  # an element's member of an array of structs
        (("out.write(a[i]);", "{ float r[8];\n for (int l = 0; l < 8; ++l) {\n#pragma HLS unroll\n r[l] = a[i]; }\n out.write(r[0]); }"),
         "unroll-partition", "indexes r by it"),
        (("for (int i = 0; i < 4; ++i) b[i] = in.read();",
          "float acc = 0;\n for (int i = 0; i < 4; ++i) {\n#pragma HLS pipeline II=1\n acc += in.read(); }\n b[0] = acc;"),
         "float-accumulator", "acc accumulates across iterations of the pipelined loop over i"),
        (("for (int i = 0; i < 4; ++i) b[i] = in.read();",
          "t acc = {};\n for (int i = 0; i < 4; ++i) {\n#pragma HLS pipeline II=1\n acc.v[0] = acc.v[0] + in.read(); }\n b[0] = acc.v[0];"),
         "float-accumulator", "acc.v[0] accumulates"),
        (("for (int i = 0; i < 4; ++i) b[i] = in.read();",  # through temporaries, as a tile op writes a fresh tile
          "t acc = {};\n for (int i = 0; i < 4; ++i) {\n#pragma HLS pipeline II=2\n const float x = acc.v[0];\n t next;\n"
          " next.v[0] = x + in.read();\n acc = next; }\n b[0] = acc.v[0];"),
         "float-accumulator", "acc accumulates across iterations of the pipelined loop over i"),
        (("for (int i = 0; i < 4; ++i) b[i] = in.read();",  # a max below maximumf's latency
          "t acc = {};\n for (int i = 0; i < 4; ++i) {\n#pragma HLS pipeline II=1\n const float x = acc.v[0];\n"
          " acc.v[0] = sd_maximum(in.read(), x); }\n b[0] = acc.v[0];"),
         "float-accumulator", "acc.v[0] accumulates"),
]


def test_every_rule_has_a_bad_snippet() -> None:
    assert {rule for _, rule, _ in BAD} == set(RULES)


@pytest.mark.parametrize(("edit", "rule", "culprit"), BAD)
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


def test_good_forms_of_the_new_rules() -> None:
    """What each new rule accepts: partitioned arrays, partial sums indexed by the loop, fixed II."""
    code = GOOD.replace("for (int i = 0; i < 4; ++i) b[i] = in.read();", """
  t acc[4];
#pragma HLS array_partition variable=acc complete dim=0
  for (int i = 0; i < 64; ++i) {
#pragma HLS pipeline II=1
    const float x = in.read();
    for (int l = 0; l < 4; ++l) acc[l].v[i % 64] = acc[l].v[i % 64] + x;
  }
  for (int i = 0; i < 4; ++i) b[i] = acc[i].v[0];""")
    assert lint_cpp(code) == [], lint_cpp(code)
    # a loop pipelined at the adder's latency carries its sum legitimately; a buffer written with
    # stream data and read back later in the iteration carries nothing computed from itself
    slow = GOOD.replace("for (int i = 0; i < 4; ++i) b[i] = in.read();",
                        "t acc = {};\n for (int i = 0; i < 4; ++i) {\n#pragma HLS pipeline II=4\n acc.v[0] += in.read(); }\n"
                        " b[0] = acc.v[0];")
    assert lint_cpp(slow) == [], lint_cpp(slow)
    bank = GOOD.replace("for (int i = 0; i < 4; ++i) b[i] = in.read();",
                        "t bank = {};\n for (int i = 0; i < 4; ++i) {\n#pragma HLS pipeline II=1\n bank.v[0] = in.read();\n"
                        " const float y = bank.v[0];\n b[i] = y; }")
    assert lint_cpp(bank) == [], lint_cpp(bank)


def test_a_max_reduction_meets_maximumfs_latency_an_adder_in_it_does_not() -> None:
    """A running max through compares and selects (sd_maximum, as a tile op's reduce emits it)
    recurs in maximumf's latency (2 cycles): II=2 meets it; an add on the same path needs the
    adder's (GPT-2 tiny W4A8 at --tile 16 pipelines its softmax max at II=2)."""
    def loop(value: str) -> str:
        return GOOD.replace("for (int i = 0; i < 4; ++i) b[i] = in.read();",
                            "t acc = {};\n for (int i = 0; i < 4; ++i) {\n#pragma HLS pipeline II=2\n const float x = in.read();\n"
                            f" const float y = acc.v[0];\n const float z = {value};\n acc.v[0] = z; }}\n b[0] = acc.v[0];")
    for select in ("sd_maximum(x, y)", "sd_minimum(y, x)", "(x > y ? x : y)"):
        assert lint_cpp(loop(select)) == [], (select, lint_cpp(loop(select)))
    for arithmetic in ("sd_maximum(x, y) + 1.0f", "x + y", "std::exp(y)"):
        assert [r for r, _ in _rules(loop(arithmetic))] == ["float-accumulator"], arithmetic


def test_skip_names_known_rules() -> None:
    with pytest.raises(ValueError, match="no rule named 'nope'"):
        lint_cpp(GOOD, skip={"nope"})


def test_gpt2_tiny_w4a8_at_tile_16_emits_a_kernel_that_passes_every_rule() -> None:
    """Its reduces (the softmax's running max) are pipelined at II=2, maximumf's latency: the
    emitted max recurs through compares and selects, which the float-accumulator rule accepts."""
    from streamdsl import quant
    from toolchain.models import model_block

    block = model_block("gpt2", "tiny", 16, 16, quant=quant.scheme("w4a8", 32))
    code = emit_kernel(sd.compile(block.example.program)).code
    assert "#pragma HLS pipeline II=2" in code and "sd_maximum(" in code
    assert lint_cpp(code) == []
