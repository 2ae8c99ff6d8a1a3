// RUN: streamdsl-opt %s -p size-fifos | filecheck %s
// RUN: streamdsl-opt %s -p 'size-fifos{mode="lp"}' | filecheck %s --check-prefix=LP
// RUN: streamdsl-opt %s -p 'size-fifos{mode="conservative"}' | filecheck %s --check-prefix=CONS
// RUN: streamdsl-opt %s -p 'size-fifos{mode="naive"}' | filecheck %s --check-prefix=NAIVE
// RUN: streamdsl-opt %s -p 'size-fifos{mode="default"}' | filecheck %s --check-prefix=DEFAULT
// RUN: streamdsl-opt %s -p size-fifos | streamdsl-opt -p size-fifos | filecheck %s

// The paper's reconvergent shape through a reduction: `split` feeds `rowsum` and `center`, and
// `rowsum` feeds `center`, which needs a row's sum before the row's first element. The bypass
// FIFO (`split` result 1) must hold the row while the sum is computed: 16 tokens of 1x16xf32.

func.func @center(%x: tensor<1x256xf32>) -> tensor<1x256xf32> {
  %y = dataflow.kernel "center"(%x) : (tensor<1x256xf32>) -> tensor<1x256xf32> {
  ^bb0(%xa: tensor<1x256xf32>):
    %xs = dataflow.dma_load %xa : tensor<1x256xf32> -> !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
    %e0 = dataflow.itensor_empty : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
    %e1 = dataflow.itensor_empty : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
    %a, %b = dataflow.task "split" ins(%xs : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>) outs(%e0, %e1 : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>, !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>) -> !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>, !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)> {
    ^bb0(%in: !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>, %o0: !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>, %o1: !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>):
      %c0 = arith.constant 0 : index
      %c16 = arith.constant 16 : index
      %c1 = arith.constant 1 : index
      %r0, %r1 = scf.for %i = %c0 to %c16 step %c1 iter_args(%w0 = %o0, %w1 = %o1) -> (!dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>, !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>) {
        %t = dataflow.itensor_read %in : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)> -> tensor<1x16xf32>
        %n0 = dataflow.itensor_write %t, %w0 : tensor<1x16xf32> -> !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
        %n1 = dataflow.itensor_write %t, %w1 : tensor<1x16xf32> -> !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
        scf.yield %n0, %n1 : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>, !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
      }
      dataflow.yield %r0, %r1 : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>, !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
    }
    %e2 = dataflow.itensor_empty : !dataflow.itensor<1x16xf32, [1] * [16], (d0) -> (0, d0)>
    %s = dataflow.task "rowsum" ins(%a : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>) outs(%e2 : !dataflow.itensor<1x16xf32, [1] * [16], (d0) -> (0, d0)>) -> !dataflow.itensor<1x16xf32, [1] * [16], (d0) -> (0, d0)> {
    ^bb0(%in: !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>, %o: !dataflow.itensor<1x16xf32, [1] * [16], (d0) -> (0, d0)>):
      %c0 = arith.constant 0 : index
      %c16 = arith.constant 16 : index
      %c1 = arith.constant 1 : index
      %zero = arith.constant 0.000000e+00 : f32
      %init = tensor.empty() : tensor<1x16xf32>
      %acc0 = linalg.fill ins(%zero : f32) outs(%init : tensor<1x16xf32>) -> tensor<1x16xf32>
      %acc = scf.for %i = %c0 to %c16 step %c1 iter_args(%acc_i = %acc0) -> (tensor<1x16xf32>) {
        %t = dataflow.itensor_read %in : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)> -> tensor<1x16xf32>
        %sum_e = tensor.empty() : tensor<1x16xf32>
        %sum = linalg.add ins(%acc_i, %t : tensor<1x16xf32>, tensor<1x16xf32>) outs(%sum_e : tensor<1x16xf32>) -> tensor<1x16xf32>
        scf.yield %sum : tensor<1x16xf32>
      }
      %done = dataflow.itensor_write %acc, %o : tensor<1x16xf32> -> !dataflow.itensor<1x16xf32, [1] * [16], (d0) -> (0, d0)>
      dataflow.yield %done : !dataflow.itensor<1x16xf32, [1] * [16], (d0) -> (0, d0)>
    }
    %e3 = dataflow.itensor_empty : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
    %c = dataflow.task "center" ins(%s, %b : !dataflow.itensor<1x16xf32, [1] * [16], (d0) -> (0, d0)>, !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>) outs(%e3 : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>) -> !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)> {
    ^bb0(%sum_in: !dataflow.itensor<1x16xf32, [1] * [16], (d0) -> (0, d0)>, %in: !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>, %o: !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>):
      %c0 = arith.constant 0 : index
      %c16 = arith.constant 16 : index
      %c1 = arith.constant 1 : index
      %m = dataflow.itensor_read %sum_in : !dataflow.itensor<1x16xf32, [1] * [16], (d0) -> (0, d0)> -> tensor<1x16xf32>
      %r = scf.for %i = %c0 to %c16 step %c1 iter_args(%w = %o) -> (!dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>) {
        %t = dataflow.itensor_read %in : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)> -> tensor<1x16xf32>
        %d_e = tensor.empty() : tensor<1x16xf32>
        %d = linalg.sub ins(%t, %m : tensor<1x16xf32>, tensor<1x16xf32>) outs(%d_e : tensor<1x16xf32>) -> tensor<1x16xf32>
        %n = dataflow.itensor_write %d, %w : tensor<1x16xf32> -> !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
        scf.yield %n : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
      }
      dataflow.yield %r : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)>
    }
    %yt = dataflow.dma_store %c : !dataflow.itensor<1x16xf32, [16] * [16], (d0) -> (0, d0)> -> tensor<1x256xf32>
    dataflow.yield %yt : tensor<1x256xf32>
  }
  func.return %y : tensor<1x256xf32>
}

// min-bits (the default) lets `split` and `center` be back-pressured: the bypass holds 15 tiles
// (the 16th waits in `split`). The DMA's tokens arrive 1 or 2 cycles apart (one 512-bit word a
// token, one HBM pseudo-channel's 354 bits a cycle carried over the burst), so the FIFOs around
// the tasks that keep up with it take two slots to absorb the uneven pace.
// CHECK:      dataflow.dma_load %xa {depth = 2 : i64}
// CHECK:      dataflow.task "split"
// CHECK-SAME:   attributes {depth = array<i64: 2, 15>}
// CHECK:      dataflow.task "rowsum"
// CHECK-SAME:   attributes {depth = 1 : i64}
// CHECK:      dataflow.task "center"
// CHECK-SAME:   attributes {depth = 2 : i64}

// The LP never lets a task stall: `center` runs ahead of the store. `split` moves at the pace of
// the DMA (one HBM pseudo-channel: 354 of the port's 512 bits a cycle), which `rowsum` keeps up with.
// LP:      dataflow.dma_load %xa {depth = 2 : i64}
// LP:      dataflow.task "split"
// LP-SAME:   attributes {depth = array<i64: 2, 16>}
// LP:      dataflow.task "rowsum"
// LP-SAME:   attributes {depth = 1 : i64}
// LP:      dataflow.task "center"
// LP-SAME:   attributes {depth = 7 : i64}

// The conservative mode slows `split` to the pace of `rowsum`: less buffering between them.
// The DMA, a source, waits for the slowed `split` instead of filling its FIFO.
// CONS:      dataflow.dma_load %xa {depth = 1 : i64}
// CONS:      dataflow.task "split"
// CONS-SAME:   attributes {depth = array<i64: 1, 16>}

// NAIVE:      dataflow.dma_load %xa {depth = 16 : i64}
// NAIVE:      attributes {depth = array<i64: 16, 16>}
// NAIVE:      attributes {depth = 1 : i64}
// NAIVE:      attributes {depth = 16 : i64}

// DEFAULT:      dataflow.dma_load %xa {depth = 2 : i64}
// DEFAULT:      attributes {depth = array<i64: 2, 2>}
// DEFAULT:      attributes {depth = 2 : i64}
// DEFAULT:      attributes {depth = 2 : i64}
