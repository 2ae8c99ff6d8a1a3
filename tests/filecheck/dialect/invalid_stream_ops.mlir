// Every stream-level op verifier rule: the message names the op and the rule.
// Each case's diagnostic must be the first line printed for its chunk.
// RUN: streamdsl-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics --allow-unregistered-dialect | filecheck %s

// stream: layout tile != token type
// CHECK:      {{^}}dataflow.stream: token type tensor<2x4xf32> differs from the layout's tile type tensor<4x2xf32>
%s = dataflow.stream layout <4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)> : !dataflow.stream<tensor<2x4xf32>, depth = 4>

// -----
// stream: result is not a stream
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.stream: result 'result' at position 0 does not verify:
%s = "dataflow.stream"() : () -> tensor<2x4xf32>

// -----
// stream_read: result != token type
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.stream_read: value type tensor<4x2xf32> differs from the stream's token type tensor<2x4xf32>
%s = dataflow.stream : !dataflow.stream<tensor<2x4xf32>, depth = 4>
%x = dataflow.stream_read %s : !dataflow.stream<tensor<2x4xf32>, depth = 4> -> tensor<4x2xf32>

// -----
// stream_write: value != token type
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.stream_write: value type tensor<2x4xi8> differs from the stream's token type tensor<2x4xf32>
%s = dataflow.stream : !dataflow.stream<tensor<2x4xf32>, depth = 4>
%x = "test.op"() : () -> tensor<2x4xi8>
dataflow.stream_write %x, %s : tensor<2x4xi8> -> !dataflow.stream<tensor<2x4xf32>, depth = 4>

// -----
// buffer: no bank
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.buffer: banks must be >= 1, got 0
%b = dataflow.buffer {banks = 0 : i64} : memref<8x2xf32>

// -----
// buffer: result is not a memref
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.buffer: result 'result' at position 0 does not verify:
%b = "dataflow.buffer"() <{banks = 2 : i64}> : () -> tensor<8x2xf32>
