"""Registers the `dataflow` dialect and streamdsl's passes with xDSL tools (`xdsl-opt` too)."""

from xdsl.universe import Universe


def _dataflow():
    from streamdsl.dialects.dataflow import DATAFLOW

    return DATAFLOW


def _insert_converters():
    from lowering.transforms.insert_converters import InsertConvertersPass

    return InsertConvertersPass


def _size_fifos():
    from lowering.transforms.size_fifos import SizeFifosPass

    return SizeFifosPass


STREAMDSL_UNIVERSE = Universe(
    all_dialects={"dataflow": _dataflow},
    all_passes={"insert-converters": _insert_converters, "size-fifos": _size_fifos},
)
