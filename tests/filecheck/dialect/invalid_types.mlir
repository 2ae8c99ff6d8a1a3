// Every itensor / stream type rule fails parsing with a message naming the type, the field and the value.
// Each case's diagnostic must be the first line printed for its chunk.
// RUN: streamdsl-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics --allow-unregistered-dialect | filecheck %s

// map with a symbol
// CHECK:      {{^}}invalid !dataflow.itensor: map: must have no symbols, got (d0, d1)[s0] -> (d0, s0)
%e = dataflow.itensor_empty : !dataflow.itensor<2x2xf32, [2, 2] * [2, 2], (d0, d1)[s0] -> (d0, s0)>

// -----
// #map inputs != #trips
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}invalid !dataflow.itensor: map: (d0) -> (d0, 0) has 1 inputs but there are 2 loops (trips [2, 2]); the map needs one input per loop
%e = dataflow.itensor_empty : !dataflow.itensor<2x2xf32, [2, 2] * [2, 2], (d0) -> (d0, 0)>

// -----
// #steps != #trips
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}invalid !dataflow.itensor: steps: has 3 entries [2, 2, 1] but trips has 2 [2, 2]; give one step per loop
%e = dataflow.itensor_empty : !dataflow.itensor<2x2xf32, [2, 2] * [2, 2, 1], (d0, d1) -> (d0, d1)>

// -----
// #map results != tile rank
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}invalid !dataflow.itensor: map: (d0, d1) -> (d0) has 1 results but the tile [2, 2] has rank 2; the map needs one result per tensor dim
%e = dataflow.itensor_empty : !dataflow.itensor<2x2xf32, [2, 2] * [2, 2], (d0, d1) -> (d0)>

// -----
// an offset below 0 (out of bounds)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}invalid !dataflow.itensor: map: (d0, d1) -> (d0, (d1 + -3)) gives offset -3 in dim 1; offsets must be >= 0 (with trips [2, 2] and steps [2, 2])
%e = dataflow.itensor_empty : !dataflow.itensor<2x2xf32, [2, 2] * [2, 2], (d0, d1) -> (d0, d1 - 3)>

// -----
// a trip count of 0
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}invalid !dataflow.itensor: trips: every entry must be an integer >= 1 and < 2^63, got [0, 2]
%e = dataflow.itensor_empty : !dataflow.itensor<2x2xf32, [0, 2] * [2, 2], (d0, d1) -> (d0, d1)>

// -----
// a negative step
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}invalid !dataflow.itensor: steps: every entry must be an integer >= 0 and < 2^63, got [-2, 2]
%e = dataflow.itensor_empty : !dataflow.itensor<2x2xf32, [2, 2] * [-2, 2], (d0, d1) -> (d0, d1)>

// -----
// a dynamic tile
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}invalid !dataflow.itensor: tile: tensor<?x2xf32> must have a static shape
%e = dataflow.itensor_empty : !dataflow.itensor<?x2xf32, [2, 2] * [2, 2], (d0, d1) -> (d0, d1)>

// -----
// a rank-0 tile
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}invalid !dataflow.itensor: tile: must have at least one dim, got []
%e = dataflow.itensor_empty : !dataflow.itensor<f32, [2, 2] * [2, 2], (d0, d1) -> (d0, d1)>

// -----
// an unsupported dtype
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}invalid !dataflow.itensor: dtype: unsupported element type f64; supported: f32, f16, bf16, i4, i8, i32
%e = dataflow.itensor_empty : !dataflow.itensor<2x2xf64, [2, 2] * [2, 2], (d0, d1) -> (d0, d1)>

// -----
// a map result using an undeclared loop: a parse error at the map
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}{{.*}}invalid_types.mlir:{{[0-9]+}}:{{[0-9]+}}
// CHECK:      Identifier not in space d2
%e = dataflow.itensor_empty : !dataflow.itensor<2x2xf32, [2, 2] * [2, 2], (d0, d1) -> (d0, d2)>

// -----
// stream depth 0
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}invalid !dataflow.stream: depth must be >= 1 (a FIFO holds a token), got 0
%s = dataflow.stream : !dataflow.stream<tensor<2x2xf32>, depth = 0>

// -----
// stream depth < 0
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}invalid !dataflow.stream: depth must be >= 1 (a FIFO holds a token), got -3
%s = dataflow.stream : !dataflow.stream<tensor<2x2xf32>, depth = -3>
