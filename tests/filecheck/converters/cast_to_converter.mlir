// RUN: streamdsl-opt %s -p insert-converters | filecheck %s
// RUN: streamdsl-opt %s -p insert-converters | streamdsl-opt --print-op-generic | streamdsl-opt | filecheck %s

// Paper Fig. 5 Case 2: column-of-tiles producer (b) to a consumer (c) that reads each column twice.
// Both nests share the outer loop over tile columns, so one bank is 8x2 (two 4x2 tiles).
!B = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!C = !dataflow.itensor<4x2xf32, [4, 2, 2] * [2, 1, 4], (d0, d1, d2) -> (d2, d0)>
// A transpose of 16x16 tiles shares no loop: the whole 64x64 tensor is buffered.
!R = !dataflow.itensor<16x16xf32, [4, 4] * [16, 16], (d0, d1) -> (d0, d1)>
!T = !dataflow.itensor<16x16xf32, [4, 4] * [16, 16], (d0, d1) -> (d1, d0)>
// The same stream as !R spelled with an extra trip-1 loop: no converter, the cast stays.
!R1 = !dataflow.itensor<16x16xf32, [1, 4, 4] * [1, 16, 16], (d0, d1, d2) -> (d1, d2)>

// CHECK-LABEL: func.func @fig5
// CHECK:       %c = dataflow.itensor_converter %s {buffer_shape = array<i64: 8, 2>, shared_loops = 1 : i64} : !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)> -> !dataflow.itensor<4x2xf32, [4, 2, 2] * [2, 1, 4], (d0, d1, d2) -> (d2, d0)>
// CHECK-NOT:   itensor_cast
func.func @fig5(%s: !B) -> !C {
  %c = dataflow.itensor_cast %s : !B -> !C
  func.return %c : !C
}

// CHECK-LABEL: func.func @transpose
// CHECK:       dataflow.itensor_converter %xs {buffer_shape = array<i64: 64, 64>, shared_loops = 0 : i64}
func.func @transpose(%x: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %y = dataflow.kernel "k"(%x) : (tensor<64x64xf32>) -> tensor<64x64xf32> {
  ^bb0(%xa: tensor<64x64xf32>):
    %xs = dataflow.dma_load %xa : tensor<64x64xf32> -> !R
    %t = dataflow.itensor_cast %xs : !R -> !T
    %o = dataflow.dma_store %t : !T -> tensor<64x64xf32>
    dataflow.yield %o : tensor<64x64xf32>
  }
  func.return %y : tensor<64x64xf32>
}

// CHECK-LABEL: func.func @same_stream
// CHECK:       dataflow.itensor_cast %r
// CHECK-NOT:   itensor_converter
func.func @same_stream(%r: !R) -> !R1 {
  %c = dataflow.itensor_cast %r : !R -> !R1
  func.return %c : !R1
}
