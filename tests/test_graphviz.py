"""The dataflow drawing names every node and FIFO and shows depths."""

import shutil
from pathlib import Path

import pytest

from streamdsl.graph import Graph, Task
from streamdsl.graphviz import graph_to_dot, render


@pytest.fixture
def graph() -> Graph:
    g = Graph()
    g.add_task(Task("dma_load(x)", writes={"out0": [0, 1, 2]}))
    g.add_task(Task("converter(scale)", reads={"arg0": [1, 2, 3]}, writes={"out0": [4, 5, 6]}))
    g.add_task(Task("scale", reads={"arg0": [5, 6, 7]}))
    g.connect("dma_load(x)", "out0", "converter(scale)", "arg0", 64, name="dma_load(x)->converter(scale)")
    g.connect("converter(scale)", "out0", "scale", "arg0", 64, name='conv"->scale')
    return g


def test_dot_has_every_node_and_fifo(graph):
    dot = graph_to_dot(graph, {"dma_load(x)->converter(scale)": 3})
    assert 'label="dma_load(x)", shape=cds' in dot
    assert 'label="converter(scale)", shape=box3d' in dot
    assert 'label="scale", shape=box' in dot
    assert dot.count(" -> ") == 2
    assert 'label="dma_load(x)->converter(scale)\n3 tokens x 64 b, depth 3 (192 b)"' in dot
    assert 'label="conv\\"->scale\n3 tokens x 64 b"' in dot  # quotes escaped, no depth known


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz not installed")
def test_render_writes_svg(graph, tmp_path: Path):
    svg = render(graph_to_dot(graph), tmp_path / "g.dot")
    assert svg is not None and "<svg" in svg.read_text()


def test_a_feedback_stream_is_dashed():
    g = Graph()
    g.add_task(Task("engine", reads={"back": [5]}, writes={"out": [1]}))
    g.add_task(Task("act", reads={"in": [2]}, writes={"out": [3]}))
    g.connect("engine", "out", "act", "in", 32, name="forward")
    g.connect("act", "out", "engine", "back", 32, name="back")
    dot = graph_to_dot(g)
    assert 'id="edge:back"' in dot and 'style=dashed, id="edge:back"' in dot
    assert 'style=dashed, id="edge:forward"' not in dot
