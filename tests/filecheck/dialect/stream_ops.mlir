// Every stream-level op round-trips between custom and generic form.
// RUN: streamdsl-opt %s | filecheck %s
// RUN: %roundtrip | filecheck %s
// RUN: streamdsl-opt %s --print-op-generic | filecheck %s --check-prefix=GENERIC

// CHECK:      %s = dataflow.stream layout <4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)> : !dataflow.stream<tensor<4x2xf32>, depth = 4>
// GENERIC:    %s = "dataflow.stream"() <{layout = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>}> : () -> !dataflow.stream<tensor<4x2xf32>, depth = 4>
%s = dataflow.stream layout <4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)> : !dataflow.stream<tensor<4x2xf32>, depth = 4>
// CHECK-NEXT: %p = dataflow.stream : !dataflow.stream<f32, depth = 1>
// GENERIC:    %p = "dataflow.stream"() : () -> !dataflow.stream<f32, depth = 1>
%p = dataflow.stream : !dataflow.stream<f32, depth = 1>

// CHECK-NEXT: %x = dataflow.stream_read %s : !dataflow.stream<tensor<4x2xf32>, depth = 4> -> tensor<4x2xf32>
// GENERIC:    %x = "dataflow.stream_read"(%s) : (!dataflow.stream<tensor<4x2xf32>, depth = 4>) -> tensor<4x2xf32>
%x = dataflow.stream_read %s : !dataflow.stream<tensor<4x2xf32>, depth = 4> -> tensor<4x2xf32>
// CHECK-NEXT: dataflow.stream_write %x, %s : tensor<4x2xf32> -> !dataflow.stream<tensor<4x2xf32>, depth = 4>
// GENERIC:    "dataflow.stream_write"(%x, %s) : (tensor<4x2xf32>, !dataflow.stream<tensor<4x2xf32>, depth = 4>) -> ()
dataflow.stream_write %x, %s : tensor<4x2xf32> -> !dataflow.stream<tensor<4x2xf32>, depth = 4>

// The default of 2 banks (ping-pong) is not printed in the custom form.
// CHECK-NEXT: %b = dataflow.buffer : memref<8x2xf32>
// GENERIC:    %b = "dataflow.buffer"() <{banks = 2 : i64}> : () -> memref<8x2xf32>
%b = dataflow.buffer : memref<8x2xf32>
// CHECK-NEXT: %b3 = dataflow.buffer {banks = 3 : i64} : memref<8x2xf32>
// GENERIC:    %b3 = "dataflow.buffer"() <{banks = 3 : i64}> : () -> memref<8x2xf32>
%b3 = dataflow.buffer {banks = 3 : i64} : memref<8x2xf32>
