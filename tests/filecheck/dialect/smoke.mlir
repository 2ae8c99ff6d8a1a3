// RUN: streamdsl-opt %s | filecheck %s
// RUN: %roundtrip | filecheck %s

// CHECK: %e = dataflow.itensor_empty : !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
