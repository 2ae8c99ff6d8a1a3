"""The U55C timing model and graph extraction from hand-written IR, checked against hand-derived
schedules (from the table's constants) and against the functional simulator's view of the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, linalg, math, scf, tensor
from xdsl.parser import Parser

from lowering.timing import U55C, TimingError, TimingTable, converter_depth, kernel_graph
from streamdsl.dialects.dataflow import DATAFLOW, kernel_of
from streamdsl.graph import GraphError
from streamdsl.sim.timed import simulate_timed, simulate_unbounded

FILECHECK = Path(__file__).parents[1] / "filecheck" / "fifo"
T = "!dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>"


def parse(text: str) -> builtin.ModuleOp:
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, scf.Scf, linalg.Linalg, tensor.Tensor, math.Math, DATAFLOW):
        ctx.load_dialect(dialect)
    module = Parser(ctx, text).parse_module()
    module.verify()
    return module


def one_task(body: str, ins: str = T, outs: str = T, unroll: str = "") -> str:
    """A kernel: dma_load -> task "t" -> dma_store, with the task body given as text."""
    attrs = f" attributes {{unroll = {unroll} : i64}}" if unroll else ""
    return f"""
func.func @f(%x: tensor<1x256xf32>) -> tensor<1x256xf32> {{
  %y = dataflow.kernel "k"(%x) : (tensor<1x256xf32>) -> tensor<1x256xf32> {{
  ^bb0(%xa: tensor<1x256xf32>):
    %xs = dataflow.dma_load %xa : tensor<1x256xf32> -> {ins}
    %e = dataflow.itensor_empty : {outs}
    %r = dataflow.task "t" ins(%xs : {ins}) outs(%e : {outs}){attrs} -> {outs} {{
    ^bb0(%in: {ins}, %o: {outs}):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c16 = arith.constant 16 : index
{body}
    }}
    %yt = dataflow.dma_store %r : {outs} -> tensor<1x256xf32>
    dataflow.yield %yt : tensor<1x256xf32>
  }}
  func.return %y : tensor<1x256xf32>
}}"""


def test_reconvergent_kernel_schedules_follow_the_table() -> None:
    graph, values = kernel_graph(kernel_of(parse((FILECHECK / "size_fifos.mlir").read_text())))
    add, sub, op = U55C.op_latency["arith.addf"], U55C.op_latency["arith.subf"], U55C.stream_op
    k = np.arange(16)
    load = graph.tasks["dma_load(xa)"]
    # token k's first beat leaves one beat before its words are all in (one 512-bit word a token, the
    # channel's 354 bits a cycle carried over from token to token: 2 or 1 cycles a token, 1.45 on average)
    in_hbm = -(-512 * (k + 1) // U55C.hbm_bits_per_cycle)
    assert load.writes["out0"].tolist() == (U55C.dma_latency + in_hbm - 1).tolist()
    assert load.writes["out0"][:3].tolist() == [65, 66, 68]
    split = graph.tasks["split"]  # pipelined at II 1: read, then both writes one cycle later
    assert split.reads["arg0"].tolist() == k.tolist()
    assert split.writes["out0"].tolist() == split.writes["out1"].tolist() == (k + op).tolist()
    # the running sum is `add` partial sums (docs/hls.md, "Float reductions"): II 1; fill (1 cycle),
    # the loop, the tree of log2(add) levels over the partials, then the write
    rowsum = graph.tasks["rowsum"]
    assert rowsum.reads["arg0"].tolist() == (1 + k).tolist()
    assert rowsum.writes["out0"].tolist() == [1 + 15 + op + add + (add - 1).bit_length() * add]  # ceil(log2(add)) levels
    assert rowsum.ii == 1
    center = graph.tasks["center"]  # the sum first, then the row at II 1
    assert center.reads["arg0"].tolist() == [0]
    assert center.reads["arg1"].tolist() == (op + k).tolist()
    assert center.writes["out0"].tolist() == (op + k + op + sub).tolist()
    assert center.delay == 2 * op + sub
    assert {e.name for e in graph.edges} == {"xs", "a", "b", "s", "c"}
    assert values["b"].name_hint == "b" and graph.edge("b").token_bits == 512


def test_unroll_attribute_sets_the_lanes_of_tile_ops() -> None:
    body = """
      %r = scf.for %i = %c0 to %c16 step %c1 iter_args(%w = %o) -> (!O) {
        %t = dataflow.itensor_read %in : !I -> tensor<1x16xf32>
        %me = tensor.empty() : tensor<1x16xf32>
        %m = linalg.mul ins(%t, %t : tensor<1x16xf32>, tensor<1x16xf32>) outs(%me : tensor<1x16xf32>) -> tensor<1x16xf32>
        %n = dataflow.itensor_write %m, %w : tensor<1x16xf32> -> !O
        scf.yield %n : !O
      }
      dataflow.yield %r : !O"""
    body = body.replace("!I", T).replace("!O", T)
    base = kernel_graph(kernel_of(parse(one_task(body))))[0].tasks["t"]
    narrow = TimingTable(lanes=4)
    slow = kernel_graph(kernel_of(parse(one_task(body))), narrow)[0].tasks["t"]
    wide = kernel_graph(kernel_of(parse(one_task(body, unroll="16"))), narrow)[0].tasks["t"]
    assert base.ii == 1 and wide.ii == 1
    assert slow.ii == 16 // 4  # 16 multiplies on 4 lanes
    assert slow.reads["arg0"].tolist() == (4 * np.arange(16)).tolist()


def test_sequential_outer_loop_runs_inner_loops_one_after_the_other() -> None:
    t4 = "!dataflow.itensor<1x16xf32, [4, 4] * [1, 16], (d0, d1) -> (d0, d1)>"
    body = f"""
      %c4 = arith.constant 4 : index
      %r = scf.for %i = %c0 to %c4 step %c1 iter_args(%w = %o) -> ({t4}) {{
        %buf0 = tensor.empty() : tensor<4x16xf32>
        %buf = scf.for %j = %c0 to %c4 step %c1 iter_args(%b = %buf0) -> (tensor<4x16xf32>) {{
          %t = dataflow.itensor_read %in : {t4} -> tensor<1x16xf32>
          %b2 = tensor.insert_slice %t into %b[%j, 0] [1, 16] [1, 1] : tensor<1x16xf32> into tensor<4x16xf32>
          scf.yield %b2 : tensor<4x16xf32>
        }}
        %w2 = scf.for %j = %c0 to %c4 step %c1 iter_args(%v = %w) -> ({t4}) {{
          %t = tensor.extract_slice %buf[%j, 0] [1, 16] [1, 1] : tensor<4x16xf32> to tensor<1x16xf32>
          %n = dataflow.itensor_write %t, %v : tensor<1x16xf32> -> {t4}
          scf.yield %n : {t4}
        }}
        scf.yield %w2 : {t4}
      }}
      dataflow.yield %r : {t4}"""
    text = one_task(body, ins=t4, outs=t4).replace("tensor<1x256xf32>", "tensor<4x64xf32>")
    task = kernel_graph(kernel_of(parse(text)))[0].tasks["t"]
    op, buf = U55C.stream_op, U55C.buffer_latency
    fill = 3 * 1 + op + buf  # 4 reads at II 1, the last insert finishes op + buf later
    drain = 3 * 1 + buf + 1  # 4 extracts at II 1, each written once read out
    period = fill + drain + U55C.loop_entry
    starts = np.arange(4)[:, None] * period
    assert task.reads["arg0"].tolist() == (starts + np.arange(4)).ravel().tolist()
    assert task.writes["out0"].tolist() == (starts + fill + buf + np.arange(4)).ravel().tolist()
    assert task.latency == 4 * period


def test_converter_fork_and_dma_nodes() -> None:
    rows = "!dataflow.itensor<4x4xf32, [4, 4] * [4, 4], (d0, d1) -> (d0, d1)>"
    cols = "!dataflow.itensor<4x4xf32, [4, 4] * [4, 4], (d0, d1) -> (d1, d0)>"
    text = f"""
func.func @f(%x: tensor<16x16xf32>) -> (tensor<16x16xf32>, tensor<16x16xf32>) {{
  %y, %z = dataflow.kernel "k"(%x) : (tensor<16x16xf32>) -> (tensor<16x16xf32>, tensor<16x16xf32>) {{
  ^bb0(%xa: tensor<16x16xf32>):
    %xs = dataflow.dma_load %xa : tensor<16x16xf32> -> {rows}
    %a, %b = dataflow.itensor_fork %xs : {rows} -> {rows}, {rows}
    %t = dataflow.itensor_converter %b : {rows} -> {cols}
    %s1 = dataflow.dma_store %a : {rows} -> tensor<16x16xf32>
    %s2 = dataflow.dma_store %t : {cols} -> tensor<16x16xf32>
    dataflow.yield %s1, %s2 : tensor<16x16xf32>, tensor<16x16xf32>
  }}
  func.return %y, %z : tensor<16x16xf32>, tensor<16x16xf32>
}}"""
    graph, _ = kernel_graph(kernel_of(parse(text)))
    k = np.arange(16)
    fork = graph.tasks["fork(xs)"]
    assert fork.reads["arg0"].tolist() == k.tolist()
    assert fork.writes["out0"].tolist() == fork.writes["out1"].tolist() == (k + 1).tolist()
    # one process on the emitted static schedule, one bank (no shared loop): it reads a source
    # tile every step; column-major token k covers row-major tile need[k] and is written at the
    # first step after that tile's read, one token a step, in the iteration's last stage
    conv = graph.tasks["converter(b)"]
    need = (k % 4) * 4 + k // 4
    step = np.maximum.accumulate(need - k) + k  # max(step[k - 1] + 1, need[k]): 3, 7, 11, 15, 16, ...
    assert conv.reads["arg0"].tolist() == k.tolist()
    assert conv.writes["out0"].tolist() == (step + converter_depth() - 1).tolist()
    run = simulate_unbounded(graph)
    assert np.all(run.write_times["t"] > run.read_times["b"][np.maximum.accumulate(need)])
    assert run.write_times["t"][3] < run.read_times["b"][15]  # the first column leaves before the last tile is in
    burst = -(-16 * 32 * k // U55C.hbm_bits_per_cycle)  # one 512-bit word a token, 354 bits a cycle over the burst
    store = graph.tasks["dma_store(t)"]
    assert store.reads["arg0"].tolist() == burst.tolist()
    assert store.latency == -(-16 * 32 * 16 // U55C.hbm_bits_per_cycle) + U55C.dma_latency  # the last token, then the burst


def test_converter_slabs_are_counted_on_the_split_loops() -> None:
    # 16x16 tiles into 32-row tiles: the source's 4-trip row loop splits into 2 x 2, so the
    # shared outer loop has 2 trips (not the 4 of the source's unsplit first loop)
    src = "!dataflow.itensor<16x16xf32, [4, 4] * [16, 16], (d0, d1) -> (d0, d1)>"
    dst = "!dataflow.itensor<32x16xf32, [2, 4] * [32, 16], (d0, d1) -> (d0, d1)>"
    text = f"""
func.func @f(%x: tensor<64x64xf32>) -> tensor<64x64xf32> {{
  %y = dataflow.kernel "k"(%x) : (tensor<64x64xf32>) -> tensor<64x64xf32> {{
  ^bb0(%xa: tensor<64x64xf32>):
    %xs = dataflow.dma_load %xa : tensor<64x64xf32> -> {src}
    %t = dataflow.itensor_converter %xs {{shared_loops = 1 : i64}} : {src} -> {dst}
    %s = dataflow.dma_store %t : {dst} -> tensor<64x64xf32>
    dataflow.yield %s : tensor<64x64xf32>
  }}
  func.return %y : tensor<64x64xf32>
}}"""
    graph, _ = kernel_graph(kernel_of(parse(text)))
    n_in, n_out = 8, 4  # per slab: 2 source tile rows x 4 columns in, 4 destination tiles out
    run = simulate_unbounded(graph)
    # a 32-row tile needs the last 16x16 tile of its column in the slab: slab g's column c is tile 4 + c
    need = np.array([g * n_in + 4 + c for g in range(2) for c in range(n_out)])
    assert np.all(run.write_times["t"] > run.read_times["xs"][need])


def test_converter_fills_slab_s_once_slab_s_minus_2_is_drained() -> None:
    src = "!dataflow.itensor<16x16xf32, [8, 1] * [16, 16], (d0, d1) -> (d0, d1)>"
    dst = "!dataflow.itensor<32x16xf32, [4, 1] * [32, 16], (d0, d1) -> (d0, d1)>"
    text = f"""
func.func @f(%x: tensor<128x16xf32>) -> tensor<128x16xf32> {{
  %y = dataflow.kernel "k"(%x) : (tensor<128x16xf32>) -> tensor<128x16xf32> {{
  ^bb0(%xa: tensor<128x16xf32>):
    %xs = dataflow.dma_load %xa : tensor<128x16xf32> -> {src}
    %t = dataflow.itensor_converter %xs {{shared_loops = 1 : i64}} : {src} -> {dst}
    %s = dataflow.dma_store %t : {dst} -> tensor<128x16xf32>
    dataflow.yield %s : tensor<128x16xf32>
  }}
  func.return %y : tensor<128x16xf32>
}}"""
    graph, _ = kernel_graph(kernel_of(parse(text)))
    # the static schedule, a beat a step (a 16x16 f32 tile is 8 beats, a 32x16 one 16): slab s
    # (source tokens 2s, 2s + 1) may be read once slab s - 2's destination token is written, and a
    # token leaves once both tiles of its slab are in: token 0's beats at steps 15..30, then one
    # token every 16 steps while the reads run ahead a slab
    conv = graph.tasks["converter(xs)"]
    latency = converter_depth() - 1  # the write is the iteration's last stage
    assert conv.reads["arg0"].tolist() == list(range(0, 64, 8))
    assert (conv.writes["out0"] - latency).tolist() == [30, 46, 62, 78]
    for depth in (1, 2, 5):
        run = simulate_timed(graph, {"xs": depth, "t": 1})
        assert run.deadlock is None
        fill, drained = run.read_times["xs"], run.write_times["t"]
        for s in range(2, 4):  # slab s (source tokens 2s, 2s+1) waits for slab s - 2's one destination token
            assert fill[2 * s] >= drained[s - 2] - latency


def test_errors_name_the_task_and_what_to_change() -> None:
    short = f"""
      %c8 = arith.constant 8 : index
      %r = scf.for %i = %c0 to %c8 step %c1 iter_args(%w = %o) -> ({T}) {{
        %t = dataflow.itensor_read %in : {T} -> tensor<1x16xf32>
        %n = dataflow.itensor_write %t, %w : tensor<1x16xf32> -> {T}
        scf.yield %n : {T}
      }}
      dataflow.yield %r : {T}"""
    with pytest.raises(TimingError, match=r"task t: reads 8 tokens on port 0 but its type .* has 16"):
        kernel_graph(kernel_of(parse(one_task(short))))
    dynamic = short.replace("%c8 = arith.constant 8 : index", "%c8 = arith.remui %c16, %c16 : index")
    with pytest.raises(TimingError, match="task t: scf.for upper bound is neither an arith.constant nor integer arithmetic"):
        kernel_graph(kernel_of(parse(one_task(dynamic))))
    branchy = f"""
      %cond = arith.constant true
      scf.if %cond {{
      }}
      %r = scf.for %i = %c0 to %c16 step %c1 iter_args(%w = %o) -> ({T}) {{
        %t = dataflow.itensor_read %in : {T} -> tensor<1x16xf32>
        %n = dataflow.itensor_write %t, %w : tensor<1x16xf32> -> {T}
        scf.yield %n : {T}
      }}
      dataflow.yield %r : {T}"""
    assert kernel_graph(kernel_of(parse(one_task(branchy))))[0].tasks["t"].reads["arg0"][0] == 0  # no stream inside: fine
    reading = branchy.replace("scf.if %cond {\n      }",
                              f"scf.if %cond {{\n        %u = dataflow.itensor_read %in : {T} -> tensor<1x16xf32>\n      }}")
    assert reading != branchy
    with pytest.raises(TimingError, match="task t: `scf.if` has loops or stream accesses inside; .* keep reads, writes and loops outside"):
        kernel_graph(kernel_of(parse(one_task(reading))))


def test_a_stream_read_twice_must_be_forked() -> None:
    text = f"""
func.func @f(%x: tensor<1x256xf32>) -> (tensor<1x256xf32>, tensor<1x256xf32>) {{
  %y, %z = dataflow.kernel "k"(%x) : (tensor<1x256xf32>) -> (tensor<1x256xf32>, tensor<1x256xf32>) {{
  ^bb0(%xa: tensor<1x256xf32>):
    %xs = dataflow.dma_load %xa : tensor<1x256xf32> -> {T}
    %s1 = dataflow.dma_store %xs : {T} -> tensor<1x256xf32>
    %s2 = dataflow.dma_store %xs : {T} -> tensor<1x256xf32>
    dataflow.yield %s1, %s2 : tensor<1x256xf32>, tensor<1x256xf32>
  }}
  func.return %y, %z : tensor<1x256xf32>, tensor<1x256xf32>
}}"""
    with pytest.raises(GraphError, match="stream %xs is read by dma_store.* and dma_store.*; fork it first"):
        kernel_graph(kernel_of(parse(text)))


def test_chunk_concat_and_reassociate_route_one_token_per_cycle() -> None:
    whole = "!dataflow.itensor<1x16xf32, [4] * [1], (d0) -> (d0, 0)>"
    half = "!dataflow.itensor<1x16xf32, [2] * [1], (d0) -> (d0, 0)>"
    flat = "!dataflow.itensor<16xf32, [4] * [16], (d0) -> (d0)>"
    text = f"""
func.func @f(%x: tensor<4x16xf32>) -> tensor<64xf32> {{
  %y = dataflow.kernel "k"(%x) : (tensor<4x16xf32>) -> tensor<64xf32> {{
  ^bb0(%xa: tensor<4x16xf32>):
    %xs = dataflow.dma_load %xa : tensor<4x16xf32> -> {whole}
    %top, %bottom = dataflow.itensor_chunk %xs {{dim = 0 : i64}} : {whole} -> {half}, {half}
    %back = dataflow.itensor_concat %top, %bottom {{dim = 0 : i64}} : {half}, {half} -> {whole}
    %f = dataflow.itensor_reassociate %back : {whole} -> {flat}
    %s = dataflow.dma_store %f : {flat} -> tensor<64xf32>
    dataflow.yield %s : tensor<64xf32>
  }}
  func.return %y : tensor<64xf32>
}}"""
    graph, _ = kernel_graph(kernel_of(parse(text)))
    chunk, concat = graph.tasks["chunk(xs)"], graph.tasks["concat(top, bottom)"]
    assert chunk.reads["arg0"].tolist() == [0, 1, 2, 3]
    assert chunk.writes["out0"].tolist() == [1, 2] and chunk.writes["out1"].tolist() == [3, 4]
    assert concat.reads["arg0"].tolist() == [0, 1] and concat.reads["arg1"].tolist() == [2, 3]
    assert concat.writes["out0"].tolist() == [1, 2, 3, 4]
    assert graph.tasks["reassociate(back)"].writes["out0"].tolist() == [1, 2, 3, 4]
    assert {e.name for e in graph.edges} == {"xs", "top", "bottom", "back", "f"}


def test_two_dmas_of_one_argument_each_stream_at_a_channels_bandwidth() -> None:
    """The emitted top gives every DMA its own port and link.cfg its own pseudo-channel (a tensor
    loaded twice is two ports, docs/hls.md): two loads of %xa stream as fast as loads of two tensors."""
    rows = "!dataflow.itensor<1x16xf32, [4] * [16], (d0) -> (0, d0)>"
    one = f"""
func.func @f(%x: tensor<1x64xf32>, %w: tensor<1x64xf32>) -> (tensor<1x64xf32>, tensor<1x64xf32>) {{
  %y, %z = dataflow.kernel "k"(%x, %w) : (tensor<1x64xf32>, tensor<1x64xf32>) -> (tensor<1x64xf32>, tensor<1x64xf32>) {{
  ^bb0(%xa: tensor<1x64xf32>, %wa: tensor<1x64xf32>):
    %a = dataflow.dma_load %xa : tensor<1x64xf32> -> {rows}
    %b = dataflow.dma_load SECOND : tensor<1x64xf32> -> {rows}
    %s1 = dataflow.dma_store %a : {rows} -> tensor<1x64xf32>
    %s2 = dataflow.dma_store %b : {rows} -> tensor<1x64xf32>
    dataflow.yield %s1, %s2 : tensor<1x64xf32>, tensor<1x64xf32>
  }}
  func.return %y, %z : tensor<1x64xf32>, tensor<1x64xf32>
}}"""
    apart, _ = kernel_graph(kernel_of(parse(one.replace("SECOND", "%wa"))))
    shared, _ = kernel_graph(kernel_of(parse(one.replace("SECOND", "%xa"))))
    k = np.arange(4)
    arrivals = (U55C.dma_latency + -(-16 * 32 * (k + 1) // U55C.hbm_bits_per_cycle) - 1).tolist()  # the only beat once its word is in
    assert arrivals == [65, 66, 68, 69]
    assert apart.tasks["dma_load(xa)"].writes["out0"].tolist() == arrivals
    for name in ("dma_load(xa)", "dma_load(xa)#2"):
        assert shared.tasks[name].writes["out0"].tolist() == arrivals


def test_a_carried_tile_updated_inside_an_scf_if_bounds_the_ii() -> None:
    """`acc = acc + t if i < 8 else acc * t`: the if's branches use the carried tile, so the loop
    cannot start before the slower branch (the adder) is done with the previous iteration's."""

    def task(update: str) -> object:
        body = f"""
      %r, %a = scf.for %i = %c0 to %c16 step %c1 iter_args(%w = %o, %acc = %z) -> (!O, tensor<1x16xf32>) {{
        %t = dataflow.itensor_read %in : !I -> tensor<1x16xf32>
{update}
        %n = dataflow.itensor_write %nxt, %w : tensor<1x16xf32> -> !O
        scf.yield %n, %nxt : !O, tensor<1x16xf32>
      }}
      dataflow.yield %r : !O"""
        body = body.replace("!I", T).replace("!O", T)
        body = "      %z = arith.constant dense<1.0> : tensor<1x16xf32>" + body
        return kernel_graph(kernel_of(parse(one_task(body))))[0].tasks["t"]

    def op(name: str, out: str) -> str:
        return f"""          %{out}e = tensor.empty() : tensor<1x16xf32>
          %{out} = linalg.{name} ins(%acc, %t : tensor<1x16xf32>, tensor<1x16xf32>) outs(%{out}e : tensor<1x16xf32>) -> tensor<1x16xf32>"""

    branchy = task(f"""        %c8 = arith.constant 8 : index
        %lt = arith.cmpi ult, %i, %c8 : index
        %nxt = scf.if %lt -> (tensor<1x16xf32>) {{
{op("add", "s")}
          scf.yield %s : tensor<1x16xf32>
        }} else {{
{op("mul", "m")}
          scf.yield %m : tensor<1x16xf32>
        }}""")
    straight = task(op("mul", "nxt"))
    assert straight.ii >= U55C.op_latency["arith.mulf"]  # a product chain, not an interleavable sum
    # the slower branch is the adder (was II = 1: the if's captured `acc` went unseen)
    assert branchy.ii == straight.ii - U55C.op_latency["arith.mulf"] + U55C.op_latency["arith.addf"]
