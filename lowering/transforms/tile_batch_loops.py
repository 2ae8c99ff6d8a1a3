"""`tile-batch-loops`: a batched contraction and everything on its batch dim stream one batch at a time.

Attention contracts per head: the scores `s[h, i, j] = sum_d q[h, i, d] * k[h, d, j]` and the
values `o[h, i, d] = sum_j p[h, i, j] * v[h, j, d]` have a loop `h` that indexes every operand (a
batch loop). tile-linalg's default takes a short loop whole (16 heads under a tile of 64), so each
stream carries all heads in one tile and walks the key tiles: the softmax's max and sum over the
keys finish for no head before the whole key cache has streamed, and the value contraction starts
only then. The two cache streams, the longest of a decode step, run one after the other.

At one batch per tile the chain runs head by head: head h's softmax finishes after its own keys,
and its values are contracted while head h+1's keys stream. This pass plans the batch loop of
every contraction with two or more inputs whose batch streams at least `min-batch-beats` beats
(`MIN_BATCH_BEATS`, 128: a short head gains less than its tiles cost) at 1, and with it every
loop that walks the same tensor dim in the generics around it, so that producers and consumers
agree and no converter buffers a whole head-major tensor:

- the loops of a generic join the input and result dims they index;
- a reshape joins a group's one non-unit dim on each side (`1x16` -> `16`);
- a concatenation joins its inputs' and result's dims other than the concatenated one;
- a dim merged from several non-unit dims (`4x8` -> `32`: grouped-query attention's KV heads
  repeated for their 8 query heads each) is planned at the product of the inner ones (8 query
  heads a tile) and the outermost at 1 (one KV head a tile): each KV head's cache then streams
  once for its group of query heads. One query head a tile would read a KV head's cache once per
  query head, and a converter would hold it for the re-reads. (A dim split into several,
  `1024` -> `16x64`, passes nothing back: 16 heads at 1 are the 1024's tiles of 64 already.)

Every generic with a loop in a planned class gets `tile_sizes`: the class's tile on those loops,
tile-linalg's default on the rest. A generic that already has `tile_sizes` (a given plan, a
quantized layer's group sum) neither seeds a plan nor gets one, and neither does an integer
matmul, whose batch loops are its weight groups (`tile-quant-groups`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func, tensor
from xdsl.dialects.builtin import DenseArrayBase, ModuleOp, TensorType, i64
from xdsl.dialects.linalg.ops import GenericOp
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineDimExpr
from xdsl.passes import ModulePass

from lowering.transforms.tile_linalg import TILE_ATTR, default_tiles, loop_ranges, top_level_generics
from lowering.transforms.tile_quant_groups import group_loops, is_integer_matmul
from streamdsl.irbuild import reassociation
from streamdsl.itensor import BEAT_BITS

__all__ = ["MIN_BATCH_BEATS", "TileBatchLoopsPass", "batch_loops", "plan_batch_loops"]

Dim = tuple[SSAValue, int]  # a tensor value's dim
# A batch must stream this many beats for its own tiles to pay: per-tile overheads, and a head
# that waits for its new key and value rows while other heads' cache tiles could stream (the
# projection's rows come one head after the other). Measured on the timed simulator: GPT-2 tiny
# (33 beats of keys a head) takes 3,458 cycles head by head and 2,238 whole at cache length 64;
# the paper blocks have 258 (GPT-2 medium, TinyLlama, Qwen2.5) to 1,032 (Gemma 3) beats a head,
# and GPT-2 medium's explored design went from 24,487 to 19,588 cycles with them one a tile.
MIN_BATCH_BEATS = 128


def batch_loops(op: GenericOp, min_beats: int = 0) -> list[int]:
    """The parallel loops of a contraction of two or more inputs that every operand indexes, when
    one batch of its largest input streams at least `min_beats` beats (none for a generic with a
    plan: a quantized layer's group sum walks its output channels so)."""
    if (len(op.inputs) < 2 or all(str(it.data) == "parallel" for it in op.iterator_types) or TILE_ATTR in op.attributes
            or is_integer_matmul(op)):
        return []
    ranges = loop_ranges(op)
    loops = [d for d in group_loops(op) if ranges[d] > 1]
    batches = math.prod(ranges[d] for d in loops)
    bits = max((math.prod(_shape(v)) * v.type.get_element_type().bitwidth for v in op.inputs if isinstance(v.type, TensorType)),
               default=0)
    return loops if loops and bits // batches >= min_beats * BEAT_BITS else []


def _loop_dims(op: GenericOp, loop: int) -> list[Dim]:
    """The input and result dims that `op`'s loop `loop` indexes (not its inits: one `tensor.empty`
    may be the init of unrelated generics)."""
    values = list(op.inputs) + list(op.results)
    maps = list(op.indexing_maps)
    return [(v, i) for v, m in zip(values, maps) for i, e in enumerate(m.data.results)
            if isinstance(e, AffineDimExpr) and e.position == loop]


def _shape(value: SSAValue) -> tuple[int, ...]:
    return tuple(value.type.get_shape()) if isinstance(value.type, TensorType) else ()


class _Classes:
    """Tensor dims joined into classes (union-find), and the merges that pass a plan on."""

    def __init__(self) -> None:
        self.parent: dict[Dim, Dim] = {}
        self.merges: list[tuple[Dim, list[Dim]]] = []  # (merged dim, its non-unit dims, outermost first)

    def find(self, d: Dim) -> Dim:
        self.parent.setdefault(d, d)
        while self.parent[d] != d:
            self.parent[d] = self.parent[self.parent[d]]
            d = self.parent[d]
        return d

    def join(self, dims: list[Dim]) -> None:
        for d in dims[1:]:
            self.parent[self.find(d)] = self.find(dims[0])

    def tiles(self, seeds: list[Dim]) -> dict[Dim, int]:
        """The tile of each planned class (by its root): 1 for the seeds' classes, and through each
        merge of a planned dim, 1 for its outermost dim and the inner dims' product for it. A merge
        whose outermost dim is planned at 1 and whose inner dims are not planned gives the merged
        dim their product too: the heads a grouped-query contraction leaves one KV head's group a
        tile (`fuse-elementwise` folds the repeat into it) stay a group a tile in the softmax after."""
        tiles = {self.find(d): 1 for d in seeds}
        grew = True
        while grew:
            grew = False
            for merged, dims in self.merges:
                inner = math.prod(_shape(v)[i] for v, i in dims[1:])
                if self.find(merged) in tiles:
                    planned = ((self.find(dims[0]), 1), (self.find(merged), inner))
                elif tiles.get(self.find(dims[0])) == 1 and not any(self.find(d) in tiles for d in dims[1:]):
                    planned = ((self.find(merged), inner),)
                else:
                    continue
                for root, tile in planned:
                    if tiles.get(root, 0) < tile:
                        tiles[root] = tile
                        grew = True
        return tiles


def _reshape_groups(op: tensor.ExpandShapeOp | tensor.CollapseShapeOp) -> Iterator[tuple[Dim, list[Dim]]]:
    """(the single dim, the group's dims) of each reassociation group."""
    single, grouped = (op.src, op.result) if isinstance(op, tensor.ExpandShapeOp) else (op.result, op.src)
    for d, group in enumerate(reassociation(op)):
        yield (single, d), [(grouped, i) for i in group]


def _classes(fn: func.FuncOp) -> _Classes:
    classes = _Classes()
    for op in fn.body.block.ops:
        if isinstance(op, GenericOp):
            for loop in range(len(op.iterator_types)):
                classes.join(_loop_dims(op, loop))
        elif isinstance(op, tensor.ExpandShapeOp | tensor.CollapseShapeOp):
            for single, group in _reshape_groups(op):
                wide = [(v, i) for v, i in group if _shape(v)[i] > 1]
                if len(wide) == 1:
                    classes.join([single, wide[0]])
                elif wide and isinstance(op, tensor.CollapseShapeOp):
                    classes.merges.append((single, wide))
        elif isinstance(op, tensor.ConcatOp):
            axis = op.dim.value.data
            for d in range(len(_shape(op.result))):
                if d != axis:
                    classes.join([(op.result, d)] + [(v, d) for v in op.inputs])
    return classes


def plan_batch_loops(fn: func.FuncOp, default: int, min_beats: int = 0) -> int:
    """Plan the batch loops of `fn`'s contractions (those whose batch streams `min_beats` or more),
    and the loops on their dims, one batch (or one group of batches) a tile; returns how many
    generics got a plan."""
    generics = top_level_generics(fn)
    seeds = [d for op in generics for loop in batch_loops(op, min_beats) for d in _loop_dims(op, loop)]
    if not seeds:
        return 0
    classes = _classes(fn)
    tiles = classes.tiles(seeds)
    planned = 0
    for op in generics:
        if TILE_ATTR in op.attributes or is_integer_matmul(op):
            continue
        ranges = loop_ranges(op)
        plan = base = default_tiles(ranges, default)
        for loop in range(len(ranges)):
            tile = min((tiles[r] for d in _loop_dims(op, loop) if (r := classes.find(d)) in tiles), default=None)
            if tile is not None and tile < ranges[loop]:
                plan = (*plan[:loop], tile, *plan[loop + 1:])
        if plan != base:
            op.attributes[TILE_ATTR] = DenseArrayBase.from_list(i64, list(plan))
            planned += 1
    return planned


@dataclass(frozen=True)
class TileBatchLoopsPass(ModulePass):
    """Plan tile sizes for batched contractions: one batch (head) a tile along the whole chain."""

    name = "tile-batch-loops"

    default_tile: int = 64
    min_batch_beats: int = MIN_BATCH_BEATS

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for fn in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            plan_batch_loops(fn, self.default_tile, self.min_batch_beats)
