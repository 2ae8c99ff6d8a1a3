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


def _fuse_elementwise():
    from lowering.transforms.fuse_elementwise import FuseElementwisePass

    return FuseElementwisePass


def _integer_tensors():
    from lowering.transforms.integer_tensors import IntegerTensorsPass

    return IntegerTensorsPass


def _order_loops():
    from lowering.transforms.order_loops import OrderLoopsPass

    return OrderLoopsPass


def _tile_linalg():
    from lowering.transforms.tile_linalg import TileLinalgPass

    return TileLinalgPass


def _tile_quant_groups():
    from lowering.transforms.tile_quant_groups import TileQuantGroupsPass

    return TileQuantGroupsPass


def _tile_batch_loops():
    from lowering.transforms.tile_batch_loops import TileBatchLoopsPass

    return TileBatchLoopsPass


def _form_kernels():
    from lowering.transforms.form_kernels import FormKernelsPass

    return FormKernelsPass


def _fuse_kernels():
    from lowering.transforms.fuse_kernels import FuseKernelsPass

    return FuseKernelsPass


def _allocate_hbm_channels():
    from lowering.transforms.allocate_hbm_channels import AllocateHbmChannelsPass

    return AllocateHbmChannelsPass


def _split_matvecs():
    from lowering.transforms.split_matvecs import SplitMatvecsPass

    return SplitMatvecsPass


def _partial_reductions():
    from lowering.transforms.partial_reductions import PartialReductionsPass

    return PartialReductionsPass


def _unroll_short_loops():
    from lowering.transforms.unroll_short_loops import UnrollShortLoopsPass

    return UnrollShortLoopsPass


def _flatten_loop_nests():
    from lowering.transforms.flatten_loop_nests import FlattenLoopNestsPass

    return FlattenLoopNestsPass


def _share_hbm_ports():
    from lowering.transforms.share_hbm_ports import ShareHbmPortsPass

    return ShareHbmPortsPass


def _narrow_streams():
    from lowering.transforms.narrow_streams import NarrowStreamsPass

    return NarrowStreamsPass


def _form_engines():
    from lowering.transforms.form_engines import FormEnginesPass

    return FormEnginesPass


def _fit_lanes():
    from lowering.transforms.fit_lanes import FitLanesPass

    return FitLanesPass


STREAMDSL_UNIVERSE = Universe(
    all_dialects={"dataflow": _dataflow},
    all_passes={
        "insert-converters": _insert_converters,
        "size-fifos": _size_fifos,
        "integer-tensors": _integer_tensors,
        "fuse-elementwise": _fuse_elementwise,
        "order-loops": _order_loops,
        "tile-linalg": _tile_linalg,
        "tile-quant-groups": _tile_quant_groups,
        "tile-batch-loops": _tile_batch_loops,
        "form-kernels": _form_kernels,
        "fuse-kernels": _fuse_kernels,
        "allocate-hbm-channels": _allocate_hbm_channels,
        "split-matvecs": _split_matvecs,
        "share-hbm-ports": _share_hbm_ports,
        "form-engines": _form_engines,
        "narrow-streams": _narrow_streams,
        "fit-lanes": _fit_lanes,
        "partial-reductions": _partial_reductions,
        "unroll-short-loops": _unroll_short_loops,
        "flatten-loop-nests": _flatten_loop_nests,
    },
)
