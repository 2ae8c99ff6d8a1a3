// Both dataflow types round-trip between custom and generic form; spacing is normalised.
// RUN: streamdsl-opt %s | filecheck %s
// RUN: %roundtrip | filecheck %s
// RUN: streamdsl-opt %s --print-op-generic | filecheck %s --check-prefix=GENERIC

// Fig. 5 (a), (b), (c).
// CHECK:      %a = dataflow.itensor_empty : !dataflow.itensor<2x2xf32, [4, 4] * [2, 2], (d0, d1) -> (d0, d1)>
// GENERIC:    %a = "dataflow.itensor_empty"() : () -> !dataflow.itensor<2x2xf32, [4, 4] * [2, 2], (d0, d1) -> (d0, d1)>
%a = dataflow.itensor_empty : !dataflow.itensor<2x2xf32, [4, 4] * [2, 2], (d0, d1) -> (d0, d1)>
// CHECK-NEXT: %b = dataflow.itensor_empty : !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%b = dataflow.itensor_empty : !dataflow.itensor<4x2xf32,[4,2]*[2,4],(d0,d1)->(d1,d0)>
// CHECK-NEXT: %c = dataflow.itensor_empty : !dataflow.itensor<4x2xf32, [4, 2, 2] * [2, 1, 4], (d0, d1, d2) -> (d2, d0)>
%c = dataflow.itensor_empty : !dataflow.itensor<4x2xf32, [4, 2, 2] * [2, 1, 4], (d0, d1, d2) -> (d2, d0)>

// No loops: one token, the whole tensor.
// CHECK-NEXT: %z = dataflow.itensor_empty : !dataflow.itensor<3x5xi8, [] * [], () -> (0, 0)>
%z = dataflow.itensor_empty : !dataflow.itensor<3x5xi8, [] * [], () -> (0, 0)>
// A reversed walk (negative coefficient), bf16.
// CHECK-NEXT: %n = dataflow.itensor_empty : !dataflow.itensor<2xbf16, [4] * [2], (d0) -> (((d0 * -1) + 6))>
%n = dataflow.itensor_empty : !dataflow.itensor<2xbf16, [4] * [2], (d0) -> (6 - d0)>
// Rank 4, a trip-count-1 loop, a sum and a mod in the map, f16.
// CHECK-NEXT: %m = dataflow.itensor_empty : !dataflow.itensor<1x1x2x2xf16, [2, 3, 1] * [1, 1, 5], (d0, d1, d2) -> (d0, (d1 + d2), 0, ((d0 mod 2) * 2))>
// GENERIC:    %m = "dataflow.itensor_empty"() : () -> !dataflow.itensor<1x1x2x2xf16, [2, 3, 1] * [1, 1, 5], (d0, d1, d2) -> (d0, (d1 + d2), 0, ((d0 mod 2) * 2))>
%m = dataflow.itensor_empty : !dataflow.itensor<1x1x2x2xf16, [2, 3, 1] * [1, 1, 5], (d0, d1, d2) -> (d0, d1 + d2, 0, (d0 mod 2) * 2)>
// Step 0: a reuse loop, i32.
// CHECK-NEXT: %i = dataflow.itensor_empty : !dataflow.itensor<8xi32, [3] * [0], (d0) -> (d0)>
%i = dataflow.itensor_empty : !dataflow.itensor<8xi32, [3] * [0], (d0) -> (d0)>

// CHECK-NEXT: %s = dataflow.stream : !dataflow.stream<tensor<2x2xf32>, depth = 4>
// GENERIC:    %s = "dataflow.stream"() : () -> !dataflow.stream<tensor<2x2xf32>, depth = 4>
%s = dataflow.stream : !dataflow.stream<tensor<2x2xf32>,depth=4>
// CHECK-NEXT: %t = dataflow.stream : !dataflow.stream<i8, depth = 1>
%t = dataflow.stream : !dataflow.stream<i8, depth = 1>
