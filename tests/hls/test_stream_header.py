"""Our hls_stream.h on its own: unbounded sequential queues, bounded blocking threaded FIFOs, and
the deadlock watchdog (small hand-written C++ programs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

INCLUDE = Path(__file__).resolve().parents[2] / "hls_backend" / "include"

BOUNDED = r"""
#include <cstdio>
#include "hls_stream.h"
#include "sd_support.h"
static void produce(hls::stream<int>& out) { for (int i = 0; i < 1000; ++i) out.write(i); }
static void consume(hls::stream<int>& in, long* sum) {
  for (int i = 0; i < 1000; ++i) { int v = in.read(); if (v != i) std::printf("order %d %d\n", v, i); *sum += v; }
}
int main() {
  hls::stream<int, 3> probe("probe");
  for (int i = 0; i < 3; ++i) probe.write(i);
  std::printf("full=%d size=%zu empty=%d depth=%d\n", (int)probe.full(), probe.size(), (int)probe.empty(), probe.depth());
  for (int i = 0; i < 3; ++i) probe.read();
  hls::stream<int, 1> s("s");
  long sum = 0;
  SD_DATAFLOW_BEGIN()
  SD_DATAFLOW_PROCESS(produce, s);
  SD_DATAFLOW_PROCESS(consume, s, &sum);
  SD_DATAFLOW_END()
  std::printf("sum=%ld\n", sum);
  return 0;
}
"""

CYCLE = r"""
#include "hls_stream.h"
#include "sd_support.h"
// a -> b -> a: each waits for the other's first token
static void a(hls::stream<int>& in, hls::stream<int>& out) { int v = in.read(); out.write(v); }
static void b(hls::stream<int>& in, hls::stream<int>& out) { int v = in.read(); out.write(v); }
int main() {
  hls::stream<int, 2> ab("a->b"), ba("b->a");
  SD_DATAFLOW_BEGIN()
  SD_DATAFLOW_PROCESS(a, ba, ab);
  SD_DATAFLOW_PROCESS(b, ab, ba);
  SD_DATAFLOW_END()
  return 0;
}
"""


def _run(tmp_path: Path, source: str, threaded: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "t.cpp").write_text(source)
    flags = ["-DSD_CSIM_THREADED"] if threaded else []
    build = subprocess.run(
        ["g++", "-std=c++17", "-O1", "-pthread", "-Wall", "-Wextra", "-Werror", "-I", str(INCLUDE), "-isystem", str(INCLUDE / "ap_types"),
         *flags, "t.cpp", "-o", "t"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    return subprocess.run(["./t"], cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_threaded_streams_are_bounded_and_ordered(tmp_path: Path) -> None:
    run = _run(tmp_path, BOUNDED, threaded=True)
    assert run.returncode == 0, run.stderr
    assert "full=1 size=3 empty=0 depth=3" in run.stdout
    assert f"sum={sum(range(1000))}" in run.stdout and "order" not in run.stdout


def test_sequential_streams_are_unbounded(tmp_path: Path) -> None:
    run = _run(tmp_path, BOUNDED, threaded=False)
    assert run.returncode == 0, run.stderr
    assert "full=0 size=3 empty=0 depth=3" in run.stdout and f"sum={sum(range(1000))}" in run.stdout


def test_watchdog_names_the_blocked_streams(tmp_path: Path) -> None:
    run = _run(tmp_path, CYCLE, threaded=True)
    assert run.returncode == 3
    assert "DEADLOCK: all 2 running dataflow processes are blocked" in run.stderr
    assert "a waits on stream 'b->a' (empty, 0/2 tokens)" in run.stderr
    assert "b waits on stream 'a->b' (empty, 0/2 tokens)" in run.stderr


def test_sequential_read_of_an_empty_stream_fails(tmp_path: Path) -> None:
    run = _run(tmp_path, CYCLE, threaded=False)  # a runs first and reads b->a before b wrote it
    assert run.returncode == 2
    assert "hls::stream 'b->a' is read while empty" in run.stderr
