// Every itensor-level op round-trips between custom and generic form.
// RUN: streamdsl-opt %s | filecheck %s
// RUN: %roundtrip | filecheck %s
// RUN: streamdsl-opt %s --print-op-generic | filecheck %s --check-prefix=GENERIC

!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!R = !dataflow.itensor<4x2xf32, [4, 2, 2] * [2, 1, 4], (d0, d1, d2) -> (d2, d0)>
!A = !dataflow.itensor<2x2xf32, [4, 4] * [2, 2], (d0, d1) -> (d0, d1)>

// CHECK:      %e = dataflow.itensor_empty : !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
// GENERIC:    %e = "dataflow.itensor_empty"() : () -> !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T

// CHECK-NEXT: %t = dataflow.itensor_read %e : !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)> -> tensor<4x2xf32>
// GENERIC:    %t = "dataflow.itensor_read"(%e) : (!dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>) -> tensor<4x2xf32>
%t = dataflow.itensor_read %e : !T -> tensor<4x2xf32>

// CHECK-NEXT: %w = dataflow.itensor_write %t, %e : tensor<4x2xf32> -> !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
// GENERIC:    %w = "dataflow.itensor_write"(%t, %e) : (tensor<4x2xf32>, !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>) -> !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%w = dataflow.itensor_write %t, %e : tensor<4x2xf32> -> !T

// A fork result may spell the source type differently (a trip-count-1 loop): equality is compatibility.
// CHECK-NEXT: %f, %f_1, %f_2 = dataflow.itensor_fork %w : !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)> -> !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>, !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>, !dataflow.itensor<4x2xf32, [1, 4, 2] * [3, 2, 4], (d0, d1, d2) -> (d2, d1)>
// GENERIC:    %f, %f_1, %f_2 = "dataflow.itensor_fork"(%w) : (!dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>) -> (!dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>, !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>, !dataflow.itensor<4x2xf32, [1, 4, 2] * [3, 2, 4], (d0, d1, d2) -> (d2, d1)>)
%f:3 = dataflow.itensor_fork %w : !T -> !T, !T, !dataflow.itensor<4x2xf32, [1, 4, 2] * [3, 2, 4], (d0, d1, d2) -> (d2, d1)>

// Join interleaves its sources round robin: each carries half of the result's tokens.
// CHECK-NEXT: %j = dataflow.itensor_join %f, %f_1 : !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>, !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)> -> !dataflow.itensor<4x2xf32, [8, 2] * [2, 4], (d0, d1) -> (d1, d0)>
// GENERIC:    %j = "dataflow.itensor_join"(%f, %f_1) : (!dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>, !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>) -> !dataflow.itensor<4x2xf32, [8, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%j = dataflow.itensor_join %f#0, %f#1 : !T, !T -> !dataflow.itensor<4x2xf32, [8, 2] * [2, 4], (d0, d1) -> (d1, d0)>

// CHECK-NEXT: %c = dataflow.itensor_cast %f_2 : !dataflow.itensor<4x2xf32, [1, 4, 2] * [3, 2, 4], (d0, d1, d2) -> (d2, d1)> -> !dataflow.itensor<2x2xf32, [4, 4] * [2, 2], (d0, d1) -> (d0, d1)>
// GENERIC:    %c = "dataflow.itensor_cast"(%f_2) : (!dataflow.itensor<4x2xf32, [1, 4, 2] * [3, 2, 4], (d0, d1, d2) -> (d2, d1)>) -> !dataflow.itensor<2x2xf32, [4, 4] * [2, 2], (d0, d1) -> (d0, d1)>
%c = dataflow.itensor_cast %f#2 : !dataflow.itensor<4x2xf32, [1, 4, 2] * [3, 2, 4], (d0, d1, d2) -> (d2, d1)> -> !A

// CHECK-NEXT: %r = dataflow.itensor_reassociate %c : !dataflow.itensor<2x2xf32, [4, 4] * [2, 2], (d0, d1) -> (d0, d1)> -> !dataflow.itensor<1x4xf32, [16] * [4], (d0) -> (0, d0)>
// GENERIC:    %r = "dataflow.itensor_reassociate"(%c) : (!dataflow.itensor<2x2xf32, [4, 4] * [2, 2], (d0, d1) -> (d0, d1)>) -> !dataflow.itensor<1x4xf32, [16] * [4], (d0) -> (0, d0)>
%r = dataflow.itensor_reassociate %c : !A -> !dataflow.itensor<1x4xf32, [16] * [4], (d0) -> (0, d0)>

// CHECK-NEXT: %h, %h_1 = dataflow.itensor_chunk %e {dim = 1 : i64} : !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)> -> !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>, !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
// GENERIC:    %h, %h_1 = "dataflow.itensor_chunk"(%e) <{dim = 1 : i64}> : (!dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>) -> (!dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>, !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>)
%h:2 = dataflow.itensor_chunk %e {dim = 1 : i64} : !T -> !H, !H

// CHECK-NEXT: %k = dataflow.itensor_concat %h, %h_1 {dim = 1 : i64} : !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>, !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)> -> !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
// GENERIC:    %k = "dataflow.itensor_concat"(%h, %h_1) <{dim = 1 : i64}> : (!dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>, !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>) -> !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%k = dataflow.itensor_concat %h#0, %h#1 {dim = 1 : i64} : !H, !H -> !T

// Fig. 5 case 2: (b) -> (c) through an 8x2 buffer, sharing the outermost loop.
// CHECK-NEXT: %v = dataflow.itensor_converter %k {buffer_shape = array<i64: 8, 2>, shared_loops = 1 : i64} : !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)> -> !dataflow.itensor<4x2xf32, [4, 2, 2] * [2, 1, 4], (d0, d1, d2) -> (d2, d0)>
// GENERIC:    %v = "dataflow.itensor_converter"(%k) <{buffer_shape = array<i64: 8, 2>, shared_loops = 1 : i64}> : (!dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>) -> !dataflow.itensor<4x2xf32, [4, 2, 2] * [2, 1, 4], (d0, d1, d2) -> (d2, d0)>
%v = dataflow.itensor_converter %k {buffer_shape = array<i64: 8, 2>, shared_loops = 1 : i64} : !T -> !R
// CHECK-NEXT: %v2 = dataflow.itensor_converter %k : !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)> -> !dataflow.itensor<2x2xf32, [4, 4] * [2, 2], (d0, d1) -> (d0, d1)>
// GENERIC:    %v2 = "dataflow.itensor_converter"(%k) : (!dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>) -> !dataflow.itensor<2x2xf32, [4, 4] * [2, 2], (d0, d1) -> (d0, d1)>
%v2 = dataflow.itensor_converter %k : !T -> !A
