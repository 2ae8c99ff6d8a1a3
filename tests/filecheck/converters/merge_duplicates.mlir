// RUN: streamdsl-opt %s -p insert-converters | filecheck %s
// RUN: streamdsl-opt %s -p insert-converters,insert-converters | filecheck %s

!R = !dataflow.itensor<16x16xf32, [4, 4] * [16, 16], (d0, d1) -> (d0, d1)>
!T = !dataflow.itensor<16x16xf32, [4, 4] * [16, 16], (d0, d1) -> (d1, d0)>

// Two consumers of one producer needing the same layout share one converter, forked after it.
// CHECK-LABEL: func.func @same_source
// CHECK-NEXT:  %a = dataflow.itensor_converter %r {buffer_shape = array<i64: 64, 64>, shared_loops = 0 : i64}
// CHECK-NEXT:  %{{.*}}, %{{.*}} = dataflow.itensor_fork %a
// CHECK-NOT:   itensor_converter
func.func @same_source(%r: !R) -> (!T, !T) {
  %a = dataflow.itensor_cast %r : !R -> !T
  %b = dataflow.itensor_cast %r : !R -> !T
  func.return %a, %b : !T, !T
}

// Sibling outputs of one fork: the converter moves before a smaller fork.
// CHECK-LABEL: func.func @fork_siblings
// CHECK-NEXT:  %a = dataflow.itensor_converter %r {buffer_shape = array<i64: 64, 64>, shared_loops = 0 : i64}
// CHECK-NEXT:  %[[T0:.*]], %[[T1:.*]] = dataflow.itensor_fork %a
// CHECK-NOT:   itensor_converter
// CHECK:       func.return %[[T0]], %[[T1]]
func.func @fork_siblings(%r: !R) -> (!T, !T) {
  %f0, %f1 = dataflow.itensor_fork %r : !R -> !R, !R
  %a = dataflow.itensor_cast %f0 : !R -> !T
  %b = dataflow.itensor_cast %f1 : !R -> !T
  func.return %a, %b : !T, !T
}

// A third fork output that keeps its layout stays on the (smaller) fork.
// CHECK-LABEL: func.func @fork_three
// CHECK:       %[[F0:.*]], %[[F2:.*]] = dataflow.itensor_fork %r
// CHECK-NEXT:  %a = dataflow.itensor_converter %[[F0]]
// CHECK-NEXT:  %[[T0:.*]], %[[T1:.*]] = dataflow.itensor_fork %a
// CHECK:       func.return %[[T0]], %[[T1]], %[[F2]]
func.func @fork_three(%r: !R) -> (!T, !T, !R) {
  %f0, %f1, %f2 = dataflow.itensor_fork %r : !R -> !R, !R, !R
  %a = dataflow.itensor_cast %f0 : !R -> !T
  %b = dataflow.itensor_cast %f1 : !R -> !T
  func.return %a, %b, %f2 : !T, !T, !R
}
