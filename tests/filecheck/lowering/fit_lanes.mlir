// RUN: streamdsl-opt %s -p 'fit-lanes{fill=0.01}' | filecheck %s
// RUN: streamdsl-opt %s -p 'fit-lanes' | filecheck %s --check-prefix=ROOM
// RUN: not streamdsl-opt %s -p 'fit-lanes{fill=0.0}' 2>&1 | filecheck %s --check-prefix=BAD

// One f32 multiply a lane: 3 DSPs (docs/resources.md), so 64 lanes take 192 DSPs and the two
// m_axi adapters none (`linalg.mul`: one `arith.mulf` a lane). 1% of the U55C is 90.24 DSPs: halving twice (96, then 48) fits.

// CHECK:      dataflow.task "scale" {{.*}} attributes {unroll = 16 : i64}

// With the whole device (fill 1) the 192 DSPs fit: the task keeps the default lanes.
// ROOM:       dataflow.task "scale"
// ROOM-NOT:   unroll

// BAD: fit-lanes: fill=0.0; give a share of the device in (0, 1]

func.func @scale(%x: tensor<1x64xf32>) -> tensor<1x64xf32> {
  %y = dataflow.kernel "scale"(%x) : (tensor<1x64xf32>) -> tensor<1x64xf32> {
  ^bb0(%xa: tensor<1x64xf32>):
    %xs = dataflow.dma_load %xa : tensor<1x64xf32> -> !dataflow.itensor<1x64xf32, [1] * [64], (d0) -> (0, d0)>
    %e = dataflow.itensor_empty : !dataflow.itensor<1x64xf32, [1] * [64], (d0) -> (0, d0)>
    %s = dataflow.task "scale" ins(%xs : !dataflow.itensor<1x64xf32, [1] * [64], (d0) -> (0, d0)>) outs(%e : !dataflow.itensor<1x64xf32, [1] * [64], (d0) -> (0, d0)>) -> !dataflow.itensor<1x64xf32, [1] * [64], (d0) -> (0, d0)> {
    ^bb0(%in: !dataflow.itensor<1x64xf32, [1] * [64], (d0) -> (0, d0)>, %o: !dataflow.itensor<1x64xf32, [1] * [64], (d0) -> (0, d0)>):
      %t = dataflow.itensor_read %in : !dataflow.itensor<1x64xf32, [1] * [64], (d0) -> (0, d0)> -> tensor<1x64xf32>
      %p_e = tensor.empty() : tensor<1x64xf32>
      %p = linalg.mul ins(%t, %t : tensor<1x64xf32>, tensor<1x64xf32>) outs(%p_e : tensor<1x64xf32>) -> tensor<1x64xf32>
      %n = dataflow.itensor_write %p, %o : tensor<1x64xf32> -> !dataflow.itensor<1x64xf32, [1] * [64], (d0) -> (0, d0)>
      dataflow.yield %n : !dataflow.itensor<1x64xf32, [1] * [64], (d0) -> (0, d0)>
    }
    %r = dataflow.dma_store %s : !dataflow.itensor<1x64xf32, [1] * [64], (d0) -> (0, d0)> -> tensor<1x64xf32>
    dataflow.yield %r : tensor<1x64xf32>
  }
  func.return %y : tensor<1x64xf32>
}
