// kernel / task / yield / DMA verifier rules: the message names the op (and symbol) and the rule.
// Each case's diagnostic must be the first line printed for its chunk.
// RUN: streamdsl-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics --allow-unregistered-dialect | filecheck %s

// kernel: block arguments != operands
// CHECK:      {{^}}dataflow.kernel @k: block arguments (tensor<4xf32>) must have the operand types (tensor<8xf32>)
%x = "test.op"() : () -> tensor<8xf32>
%y = dataflow.kernel "k"(%x) : (tensor<8xf32>) -> tensor<8xf32> {
^bb0(%a: tensor<4xf32>):
  %z = "test.op"() : () -> tensor<8xf32>
  dataflow.yield %z : tensor<8xf32>
}

// -----
// kernel: body ends in a terminator that is not dataflow.yield
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.kernel @k: body must end with dataflow.yield
%x = "test.op"() : () -> tensor<8xf32>
dataflow.kernel "k"(%x) : (tensor<8xf32>) -> () {
^bb0(%a: tensor<8xf32>):
  "test.termop"() : () -> ()
}

// -----
// kernel: empty body (xDSL's single-block rule)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}Operation dataflow.kernel contains empty block in single-block region that expects at least a terminator
%x = "test.op"() : () -> tensor<8xf32>
dataflow.kernel "k"(%x) : (tensor<8xf32>) -> () {
^bb0(%a: tensor<8xf32>):
}

// -----
// kernel: body ends in another op (xDSL reports the op that should be a terminator)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}Operation test.op terminates block in single-block region but is not a terminator
%x = "test.op"() : () -> tensor<8xf32>
dataflow.kernel "k"(%x) : (tensor<8xf32>) -> () {
^bb0(%a: tensor<8xf32>):
  "test.op"() : () -> ()
}

// -----
// kernel: yield != results
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.kernel @k: yields () but the results are (tensor<8xf32>)
%x = "test.op"() : () -> tensor<8xf32>
%y = dataflow.kernel "k"(%x) : (tensor<8xf32>) -> tensor<8xf32> {
^bb0(%a: tensor<8xf32>):
  dataflow.yield
}

// -----
// kernel: operands are tensors in HBM, not streams
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.kernel: operand 'inputs' at position 0 does not verify:
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
%e = dataflow.itensor_empty : !X
"dataflow.kernel"(%e) <{sym_name = "k"}> ({
^bb0(%a: !X):
  "dataflow.yield"() : () -> ()
}) : (!X) -> ()

// -----
// task: block arguments != ins ++ outs
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.task @t: block arguments (!dataflow.itensor<4xf32, [1] * [4], (d0) -> (d0)>) must have the operand types (!dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>)
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
dataflow.kernel "k"() : () -> () {
  %e = dataflow.itensor_empty : !X
  %r = dataflow.task "t" ins(:) outs(%e : !X) -> !X {
  ^bb0(%o: !dataflow.itensor<4xf32, [1] * [4], (d0) -> (d0)>):
    dataflow.yield %o : !dataflow.itensor<4xf32, [1] * [4], (d0) -> (d0)>
  }
  dataflow.yield
}

// -----
// task: body ends in a terminator that is not dataflow.yield
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.task @t: body must end with dataflow.yield
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
dataflow.kernel "k"() : () -> () {
  %e = dataflow.itensor_empty : !X
  %r = dataflow.task "t" ins(:) outs(%e : !X) -> !X {
  ^bb0(%o: !X):
    "test.termop"() : () -> ()
  }
  dataflow.yield
}

// -----
// task: yield != results
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.task @t: yields () but the results are (!dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>)
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
dataflow.kernel "k"() : () -> () {
  %e = dataflow.itensor_empty : !X
  %r = dataflow.task "t" ins(:) outs(%e : !X) -> !X {
  ^bb0(%o: !X):
    dataflow.yield
  }
  dataflow.yield
}

// -----
// task: results != outs
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.task @t: results (!dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>) must have the types of the outs ()
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
dataflow.kernel "k"() : () -> () {
  %e = dataflow.itensor_empty : !X
  %r = dataflow.task "t" ins(%e : !X) outs(:) -> !X {
  ^bb0(%o: !X):
    dataflow.yield %o : !X
  }
  dataflow.yield
}

// -----
// task outside a kernel
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.task: 'dataflow.task' expects parent op 'dataflow.kernel'
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
%e = dataflow.itensor_empty : !X
%r = dataflow.task "t" ins(:) outs(%e : !X) -> !X {
^bb0(%o: !X):
  dataflow.yield %o : !X
}

// -----
// yield outside a kernel or task
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.yield: 'dataflow.yield' expects parent op to be one of 'dataflow.kernel', 'dataflow.task'
"func.func"() <{sym_name = "f", function_type = () -> ()}> ({
  dataflow.yield
}) : () -> ()

// -----
// dma_load: shape mismatch
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.dma_load: tensor tensor<8x4xf32> must have the shape [8] and dtype f32 of !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
%x = "test.op"() : () -> tensor<8x4xf32>
%s = dataflow.dma_load %x : tensor<8x4xf32> -> !X

// -----
// dma_load: dtype mismatch
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.dma_load: tensor tensor<8xi8> must have the shape [8] and dtype f32 of !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
%x = "test.op"() : () -> tensor<8xi8>
%s = dataflow.dma_load %x : tensor<8xi8> -> !X

// -----
// dma_sequence: a member's box outside its tensor
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.dma_sequence: the box [8] at offsets [6] does not lie inside the tensor tensor<8xf32>
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
%x = "test.op"() : () -> tensor<8xf32>
%a, %b = dataflow.dma_sequence %x, %x {offsets = [array<i64: 0>, array<i64: 6>]} : tensor<8xf32>, tensor<8xf32> -> !X, !X

// -----
// dma_sequence: an offsets array per member
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.dma_sequence: 2 tensors, 2 streams and 1 offsets; give each member one of each
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
%x = "test.op"() : () -> tensor<8xf32>
%a, %b = dataflow.dma_sequence %x, %x {offsets = [array<i64: 0>]} : tensor<8xf32>, tensor<8xf32> -> !X, !X

// -----
// dma_store: shape mismatch
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.dma_store: tensor tensor<16xf32> must have the shape [8] and dtype f32 of !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
%e = dataflow.itensor_empty : !X
%t = dataflow.dma_store %e : !X -> tensor<16xf32>

// -----
// dma_store: dtype mismatch
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.dma_store: tensor tensor<8xf16> must have the shape [8] and dtype f32 of !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
!X = !dataflow.itensor<4xf32, [2] * [4], (d0) -> (d0)>
%e = dataflow.itensor_empty : !X
%t = dataflow.dma_store %e : !X -> tensor<8xf16>

// -----
// itensor_feedback: never connected
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_feedback %back: 0 dataflow.itensor_feedback_connect name it; exactly one must give the stream its producer
!X = !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
%x = "test.op"() : () -> tensor<1x8xf32>
%y = dataflow.kernel "k"(%x) : (tensor<1x8xf32>) -> tensor<1x8xf32> {
^bb0(%a: tensor<1x8xf32>):
  %back = dataflow.itensor_feedback : !X
  %yt = dataflow.dma_store %back : !X -> tensor<1x8xf32>
  dataflow.yield %yt : tensor<1x8xf32>
}

// -----
// itensor_feedback_connect: a stream of another type
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_feedback_connect: %xs of type !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)> cannot feed %back of type !dataflow.itensor<1x8xf32, [1] * [8], (d0) -> (0, d0)>: the types must be equal
!X = !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
!W = !dataflow.itensor<1x8xf32, [1] * [8], (d0) -> (0, d0)>
%x = "test.op"() : () -> tensor<1x8xf32>
%y = dataflow.kernel "k"(%x) : (tensor<1x8xf32>) -> tensor<1x8xf32> {
^bb0(%a: tensor<1x8xf32>):
  %back = dataflow.itensor_feedback : !W
  %xs = dataflow.dma_load %a : tensor<1x8xf32> -> !X
  "dataflow.itensor_feedback_connect"(%xs, %back) : (!X, !W) -> ()
  %yt = dataflow.dma_store %back : !W -> tensor<1x8xf32>
  dataflow.yield %yt : tensor<1x8xf32>
}

// -----
// itensor_feedback_connect: a stream connected to itself (through a cast)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_feedback_connect: %back is connected to itself: a feedback stream needs a producer (a process) on its cycle
!X = !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
%x = "test.op"() : () -> tensor<1x8xf32>
%y = dataflow.kernel "k"(%x) : (tensor<1x8xf32>) -> tensor<1x8xf32> {
^bb0(%a: tensor<1x8xf32>):
  %back = dataflow.itensor_feedback : !X
  %c = dataflow.itensor_cast %back : !X -> !X
  dataflow.itensor_feedback_connect %c to %back : !X
  %yt = dataflow.dma_store %back : !X -> tensor<1x8xf32>
  dataflow.yield %yt : tensor<1x8xf32>
}

// -----
// itensor_feedback_connect: its target is not a feedback stream
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_feedback_connect: %xs is not a dataflow.itensor_feedback result
!X = !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
%x = "test.op"() : () -> tensor<1x8xf32>
%y = dataflow.kernel "k"(%x) : (tensor<1x8xf32>) -> tensor<1x8xf32> {
^bb0(%a: tensor<1x8xf32>):
  %xs = dataflow.dma_load %a : tensor<1x8xf32> -> !X
  %zs = dataflow.dma_load %a : tensor<1x8xf32> -> !X
  dataflow.itensor_feedback_connect %zs to %xs : !X
  %yt = dataflow.dma_store %xs : !X -> tensor<1x8xf32>
  dataflow.yield %yt : tensor<1x8xf32>
}

// -----
// itensor_feedback: outside a kernel
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_feedback: 'dataflow.itensor_feedback' expects parent op 'dataflow.kernel'
%back = dataflow.itensor_feedback : !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>
