"""Eager mode: run a kernel's Python function itself on numpy arrays (for debugging, and as a
second reference next to the functional simulator, which runs the compiled IR).

Input ports pop the tiles of their type's `reference_stream`; yielded / written tiles are collected
and reassembled with `from_stream`. Token counts are checked at run time as well.
"""

from __future__ import annotations

import inspect
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from streamdsl.dsl.ops import int_tile
from streamdsl.errors import StreamError

if TYPE_CHECKING:
    from streamdsl.dsl.kernel import Kernel, Port

__all__ = ["run_kernel", "stream_type"]

_STREAM_TYPES: dict[int, tuple[weakref.ref, Any]] = {}  # id(array) -> (array, the itensor that streamed it)


def stream_type(array: Any) -> Any:
    """The itensor of the stream an eager kernel output came from (None for other arrays):
    `sd.join` needs the token order of its parts."""
    entry = _STREAM_TYPES.get(id(array))
    return entry[1] if entry is not None and entry[0]() is array else None


class EagerIn:
    def __init__(self, kernel: str, port: Port, array: np.ndarray, scalars: dict[str, int] | None = None):
        self.kernel, self.port = kernel, port
        self.tiles = port.type.bind(scalars or {}).reference_stream(np.asarray(array, dtype=port.type.dtype.storage))
        self.next = 0

    def read(self) -> np.ndarray:
        if self.next >= len(self.tiles):
            raise StreamError(f"kernel {self.kernel!r} read port {self.port.name!r} past its end "
                              f"({len(self.tiles)} tokens of {self.port.type})")
        self.next += 1
        return int_tile(self.tiles[self.next - 1].copy())  # copies: in-place updates must not touch the input


class EagerOut:
    def __init__(self, kernel: str, port: Port, scalars: dict[str, int]):
        self.kernel, self.port, self.type = kernel, port, port.type.bind(scalars)
        self.tiles: list[np.ndarray] = []

    def write(self, tile: Any) -> None:
        tile = np.asarray(tile)
        if tile.shape != self.port.type.tile:
            raise StreamError(f"kernel {self.kernel!r} wrote a tile of shape {tile.shape} to port {self.port.name!r}, "
                              f"whose tiles are {self.port.type.tile}")
        self.tiles.append(tile.astype(self.port.type.dtype.storage, copy=True))

    def result(self) -> np.ndarray:
        if len(self.tiles) != self.type.num_tokens:
            raise StreamError(f"kernel {self.kernel!r} wrote {len(self.tiles)} tokens to port {self.port.name!r}, "
                              f"its type {self.type} has {self.type.num_tokens}")
        array = self.type.from_stream(self.tiles)
        _STREAM_TYPES[id(array)] = (weakref.ref(array, lambda _r, key=id(array): _STREAM_TYPES.pop(key, None)), self.type)
        return array


def run_kernel(kernel: Kernel, arrays: tuple[Any, ...]) -> Any:
    sig = kernel.signature
    if len(arrays) != len(sig.arguments):
        raise TypeError(f"kernel {kernel.name!r} takes {len(sig.arguments)} argument(s), got {len(arrays)}")
    given = dict(zip((a.name for a in sig.arguments), arrays))
    scalars = {}
    for param in sig.scalars:
        value = given[param.name]
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value <= (param.spec.max or value):
            raise StreamError(f"kernel {kernel.name!r}: scalar {param.name!r} must be an int in [0, {param.spec.max}], "
                              f"got {value!r}")
        scalars[param.name] = given[param.name] = int(value)
    ins = {p.name: EagerIn(kernel.name, p, given[p.name], scalars) for p in sig.inputs}
    outs = [EagerOut(kernel.name, p, scalars) for p in sig.outputs]
    by_name = {**given, **ins, **{o.port.name: o for o in outs}}
    result = kernel.fn(*[by_name[n] for n in sig.params])
    if inspect.isgenerator(result):
        for item in result:
            items = item if len(outs) > 1 else (item,)
            if len(items) != len(outs):
                raise StreamError(f"kernel {kernel.name!r} yielded {len(items)} values for {len(outs)} outputs")
            for out, tile in zip(outs, items):
                out.write(tile)
    for port in ins.values():
        if port.next != len(port.tiles):
            raise StreamError(f"kernel {kernel.name!r} read {port.next} of the {len(port.tiles)} tokens of port "
                              f"{port.port.name!r}")
    results = tuple(o.result() for o in outs)
    return results[0] if len(results) == 1 else results
