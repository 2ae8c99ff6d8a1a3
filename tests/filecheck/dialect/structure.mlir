// kernel, task, yield, dma_load, dma_sequence and dma_store round-trip between custom and generic form, at the
// itensor level (tasks with outs and results) and at the stream level (tasks with streams only).
// RUN: streamdsl-opt %s | filecheck %s
// RUN: %roundtrip | filecheck %s
// RUN: streamdsl-opt %s --print-op-generic | filecheck %s --check-prefix=GENERIC

!X = !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>

// CHECK:      func.func @double(%x: tensor<1x8xf32>) -> tensor<1x8xf32> {
// CHECK-NEXT:   %y = dataflow.kernel "double"(%x) : (tensor<1x8xf32>) -> tensor<1x8xf32> {
// CHECK-NEXT:   ^bb0(%xa: tensor<1x8xf32>):
// CHECK-NEXT:     %xs = dataflow.dma_load %xa : tensor<1x8xf32> -> !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
// CHECK-NEXT:     %e = dataflow.itensor_empty : !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
// CHECK-NEXT:     %ys = dataflow.task "twice" ins(%xs : !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>) outs(%e : !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>) -> !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)> {
// CHECK-NEXT:     ^bb0(%xi: !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>, %yo: !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>):
// CHECK:            %out = scf.for %i = %lb to %ub step %st iter_args(%acc = %yo) -> (!dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>) {
// CHECK-NEXT:         %t = dataflow.itensor_read %xi : !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)> -> tensor<1x4xf32>
// CHECK:              %acc2 = dataflow.itensor_write %s, %acc : tensor<1x4xf32> -> !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
// CHECK-NEXT:         scf.yield %acc2 : !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
// CHECK-NEXT:       }
// CHECK-NEXT:       dataflow.yield %out : !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
// CHECK-NEXT:     }
// CHECK-NEXT:     %yt = dataflow.dma_store %ys : !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)> -> tensor<1x8xf32>
// CHECK-NEXT:     dataflow.yield %yt : tensor<1x8xf32>
// CHECK-NEXT:   }
// CHECK-NEXT:   func.return %y : tensor<1x8xf32>

// GENERIC:      %y = "dataflow.kernel"(%x) <{sym_name = "double"}> ({
// GENERIC:        %xs = "dataflow.dma_load"(%xa) : (tensor<1x8xf32>) -> !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
// GENERIC:        %ys = "dataflow.task"(%xs, %e) <{sym_name = "twice", operandSegmentSizes = array<i32: 1, 1>}> ({
// GENERIC:          "dataflow.yield"(%out) : (!dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>) -> ()
// GENERIC-NEXT:   }) : (!dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>, !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>) -> !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
// GENERIC-NEXT:   %yt = "dataflow.dma_store"(%ys) : (!dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>) -> tensor<1x8xf32>
// GENERIC-NEXT:   "dataflow.yield"(%yt) : (tensor<1x8xf32>) -> ()
// GENERIC-NEXT: }) : (tensor<1x8xf32>) -> tensor<1x8xf32>
func.func @double(%x: tensor<1x8xf32>) -> tensor<1x8xf32> {
  %y = dataflow.kernel "double"(%x) : (tensor<1x8xf32>) -> tensor<1x8xf32> {
  ^bb0(%xa: tensor<1x8xf32>):
    %xs = dataflow.dma_load %xa : tensor<1x8xf32> -> !X
    %e = dataflow.itensor_empty : !X
    %ys = dataflow.task "twice" ins(%xs : !X) outs(%e : !X) -> !X {
    ^bb1(%xi: !X, %yo: !X):
      %lb = arith.constant 0 : index
      %ub = arith.constant 2 : index
      %st = arith.constant 1 : index
      %out = scf.for %i = %lb to %ub step %st iter_args(%acc = %yo) -> (!X) {
        %t = dataflow.itensor_read %xi : !X -> tensor<1x4xf32>
        %d = tensor.empty() : tensor<1x4xf32>
        %s = linalg.add ins(%t, %t : tensor<1x4xf32>, tensor<1x4xf32>) outs(%d : tensor<1x4xf32>) -> tensor<1x4xf32>
        %acc2 = dataflow.itensor_write %s, %acc : tensor<1x4xf32> -> !X
        scf.yield %acc2 : !X
      }
      dataflow.yield %out : !X
    }
    %yt = dataflow.dma_store %ys : !X -> tensor<1x8xf32>
    dataflow.yield %yt : tensor<1x8xf32>
  }
  func.return %y : tensor<1x8xf32>
}

// Stream level: tasks read and write streams, have no outs and no results; yields are empty.
// CHECK:      dataflow.kernel "pipe"() : () -> () {
// CHECK-NEXT:   %s = dataflow.stream layout <4xf32, [2] * [4], (d0) -> (d0)> : !dataflow.stream<tensor<4xf32>, depth = 2>
// CHECK-NEXT:   dataflow.task "produce" ins(%s : !dataflow.stream<tensor<4xf32>, depth = 2>) outs(:) {
// CHECK-NEXT:   ^bb0(%so: !dataflow.stream<tensor<4xf32>, depth = 2>):
// CHECK-NEXT:     %z = arith.constant dense<0.000000e+00> : tensor<4xf32>
// CHECK-NEXT:     dataflow.stream_write %z, %so : tensor<4xf32> -> !dataflow.stream<tensor<4xf32>, depth = 2>
// CHECK-NEXT:     dataflow.yield
// CHECK-NEXT:   }
// CHECK-NEXT:   dataflow.task "consume" ins(%s : !dataflow.stream<tensor<4xf32>, depth = 2>) outs(:) attributes {note = "sink"} {
// CHECK-NEXT:   ^bb0(%si: !dataflow.stream<tensor<4xf32>, depth = 2>):
// CHECK-NEXT:     %r = dataflow.stream_read %si : !dataflow.stream<tensor<4xf32>, depth = 2> -> tensor<4xf32>
// CHECK-NEXT:     dataflow.yield
// CHECK-NEXT:   }
// CHECK-NEXT:   dataflow.yield
// CHECK-NEXT: }
// GENERIC:      "dataflow.task"(%s) <{sym_name = "consume", operandSegmentSizes = array<i32: 1, 0>}> ({
// GENERIC:        "dataflow.yield"() : () -> ()
// GENERIC-NEXT: }) {note = "sink"} : (!dataflow.stream<tensor<4xf32>, depth = 2>) -> ()
dataflow.kernel "pipe"() : () -> () {
  %s = dataflow.stream layout <4xf32, [2] * [4], (d0) -> (d0)> : !dataflow.stream<tensor<4xf32>, depth = 2>
  dataflow.task "produce" ins(%s : !dataflow.stream<tensor<4xf32>, depth = 2>) outs(:) {
  ^bb0(%so: !dataflow.stream<tensor<4xf32>, depth = 2>):
    %z = arith.constant dense<0.0> : tensor<4xf32>
    dataflow.stream_write %z, %so : tensor<4xf32> -> !dataflow.stream<tensor<4xf32>, depth = 2>
    dataflow.yield
  }
  dataflow.task "consume" ins(%s : !dataflow.stream<tensor<4xf32>, depth = 2>) outs(:) attributes {note = "sink"} {
  ^bb0(%si: !dataflow.stream<tensor<4xf32>, depth = 2>):
    %r = dataflow.stream_read %si : !dataflow.stream<tensor<4xf32>, depth = 2> -> tensor<4xf32>
    dataflow.yield
  }
  dataflow.yield
}

// A dma_sequence: two loads through one set of ports, the second a box of its tensor.
// CHECK:      func.func @sequence(%a: tensor<1x8xf32>, %b: tensor<2x8xf32>) -> (tensor<1x8xf32>, tensor<1x8xf32>) {
// CHECK:        %as, %bs = dataflow.dma_sequence %aa, %ba {offsets = [array<i64>, array<i64: 1, 0>]} : tensor<1x8xf32>, tensor<2x8xf32> -> !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>, !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
// GENERIC:    %as, %bs = "dataflow.dma_sequence"(%aa, %ba) <{offsets = [array<i64>, array<i64: 1, 0>]}> : (tensor<1x8xf32>, tensor<2x8xf32>) -> (!dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>, !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>)
func.func @sequence(%a: tensor<1x8xf32>, %b: tensor<2x8xf32>) -> (tensor<1x8xf32>, tensor<1x8xf32>) {
  %y, %z = dataflow.kernel "sequence"(%a, %b) : (tensor<1x8xf32>, tensor<2x8xf32>) -> (tensor<1x8xf32>, tensor<1x8xf32>) {
  ^bb0(%aa: tensor<1x8xf32>, %ba: tensor<2x8xf32>):
    %as, %bs = dataflow.dma_sequence %aa, %ba {offsets = [array<i64>, array<i64: 1, 0>]} : tensor<1x8xf32>, tensor<2x8xf32> -> !X, !X
    %at = dataflow.dma_store %as : !X -> tensor<1x8xf32>
    %bt = dataflow.dma_store %bs : !X -> tensor<1x8xf32>
    dataflow.yield %at, %bt : tensor<1x8xf32>, tensor<1x8xf32>
  }
  func.return %y, %z : tensor<1x8xf32>, tensor<1x8xf32>
}

// A feedback stream: %back is read by "step" above the task "inc" that writes %again, which
// itensor_feedback_connect gives it: the one way to a cycle in a kernel's stream graph.
// CHECK:      %back = dataflow.itensor_feedback : !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
// CHECK:      dataflow.itensor_feedback_connect %again to %back : !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
// GENERIC:    %back = "dataflow.itensor_feedback"() : () -> !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
// GENERIC:    "dataflow.itensor_feedback_connect"(%again, %back) : (!dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>, !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>) -> ()
func.func @loop(%x: tensor<1x8xf32>) -> tensor<1x8xf32> {
  %y = dataflow.kernel "loop"(%x) : (tensor<1x8xf32>) -> tensor<1x8xf32> {
  ^bb0(%xa: tensor<1x8xf32>):
    %xs = dataflow.dma_load %xa : tensor<1x8xf32> -> !X
    %back = dataflow.itensor_feedback : !X
    %e0 = dataflow.itensor_empty : !X
    %e1 = dataflow.itensor_empty : !X
    %fwd, %out = dataflow.task "step" ins(%xs, %back : !X, !X) outs(%e0, %e1 : !X, !X) -> !X, !X {
    ^bb1(%xi: !X, %bi: !X, %fo: !X, %oo: !X):
      %t = dataflow.itensor_read %xi : !X -> tensor<1x4xf32>
      %f1 = dataflow.itensor_write %t, %fo : tensor<1x4xf32> -> !X
      %u = dataflow.itensor_read %bi : !X -> tensor<1x4xf32>
      %o1 = dataflow.itensor_write %u, %oo : tensor<1x4xf32> -> !X
      %t2 = dataflow.itensor_read %xi : !X -> tensor<1x4xf32>
      %f2 = dataflow.itensor_write %t2, %f1 : tensor<1x4xf32> -> !X
      %u2 = dataflow.itensor_read %bi : !X -> tensor<1x4xf32>
      %o2 = dataflow.itensor_write %u2, %o1 : tensor<1x4xf32> -> !X
      dataflow.yield %f2, %o2 : !X, !X
    }
    %e2 = dataflow.itensor_empty : !X
    %again = dataflow.task "inc" ins(%fwd : !X) outs(%e2 : !X) -> !X {
    ^bb1(%fi: !X, %io: !X):
      %lb = arith.constant 0 : index
      %ub = arith.constant 2 : index
      %st = arith.constant 1 : index
      %res = scf.for %i = %lb to %ub step %st iter_args(%acc = %io) -> (!X) {
        %t = dataflow.itensor_read %fi : !X -> tensor<1x4xf32>
        %d = tensor.empty() : tensor<1x4xf32>
        %s = linalg.add ins(%t, %t : tensor<1x4xf32>, tensor<1x4xf32>) outs(%d : tensor<1x4xf32>) -> tensor<1x4xf32>
        %acc2 = dataflow.itensor_write %s, %acc : tensor<1x4xf32> -> !X
        scf.yield %acc2 : !X
      }
      dataflow.yield %res : !X
    }
    dataflow.itensor_feedback_connect %again to %back : !X
    %yt = dataflow.dma_store %out : !X -> tensor<1x8xf32>
    dataflow.yield %yt : tensor<1x8xf32>
  }
  func.return %y : tensor<1x8xf32>
}
