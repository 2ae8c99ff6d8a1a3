// RUN: streamdsl-opt %s -p insert-converters | filecheck %s
// RUN: streamdsl-opt %s -p insert-converters,insert-converters | filecheck %s

// Fig. 7: 64x64 tensor, 16x16 tiles. The consumer reads each 16-row block twice; both share the
// outer loop over row blocks, so the bank is 16x64, refilled 4 times.
!P = !dataflow.itensor<16x16xf32, [4, 4] * [16, 16], (d0, d1) -> (d0, d1)>
!Q = !dataflow.itensor<16x16xf32, [4, 2, 4] * [16, 1, 16], (d0, d1, d2) -> (d0, d2)>
// Row tiles 32x64 to 16x16 tiles: the 4 x 32 and 8 x 16 row loops split to share a 4 x 32 loop.
!ROWS = !dataflow.itensor<32x64xf32, [4] * [32], (d0) -> (d0, 0)>
!SQ = !dataflow.itensor<16x16xf32, [8, 4] * [16, 16], (d0, d1) -> (d0, d1)>
!SQ1 = !dataflow.itensor<16x16xf32, [8, 1, 4] * [16, 1, 16], (d0, d1, d2) -> (d0, d2)>

// CHECK-LABEL: func.func @fig7
// CHECK:       dataflow.itensor_converter %p {buffer_shape = array<i64: 16, 64>, shared_loops = 1 : i64}
func.func @fig7(%p: !P) -> !Q {
  %q = dataflow.itensor_converter %p : !P -> !Q
  func.return %q : !Q
}

// CHECK-LABEL: func.func @split
// CHECK:       dataflow.itensor_converter %r {buffer_shape = array<i64: 32, 64>, shared_loops = 1 : i64}
func.func @split(%r: !ROWS) -> !SQ {
  %q = dataflow.itensor_converter %r : !ROWS -> !SQ
  func.return %q : !SQ
}

// A converter that already has a plan is left alone.
// CHECK-LABEL: func.func @kept
// CHECK:       dataflow.itensor_converter %p {buffer_shape = array<i64: 64, 64>, shared_loops = 0 : i64}
func.func @kept(%p: !P) -> !Q {
  %q = dataflow.itensor_converter %p {buffer_shape = array<i64: 64, 64>, shared_loops = 0 : i64} : !P -> !Q
  func.return %q : !Q
}

// Between identical types the converter disappears; between types that stream alike it is a cast.
// CHECK-LABEL: func.func @useless
// CHECK-NEXT:  %c = dataflow.itensor_cast %s : !dataflow.itensor<16x16xf32, [8, 4] * [16, 16], (d0, d1) -> (d0, d1)> -> !dataflow.itensor<16x16xf32, [8, 1, 4] * [16, 1, 16], (d0, d1, d2) -> (d0, d2)>
// CHECK-NEXT:  func.return %s, %c
func.func @useless(%s: !SQ) -> (!SQ, !SQ1) {
  %a = dataflow.itensor_converter %s : !SQ -> !SQ
  %c = dataflow.itensor_converter %s : !SQ -> !SQ1
  func.return %a, %c : !SQ, !SQ1
}
