// RUN: streamdsl-opt %s -p 'size-fifos{mode="lp"}' | filecheck %s
// RUN: streamdsl-opt %s -p size-fifos | filecheck %s --check-prefix=MIN
// RUN: streamdsl-opt %s -p 'size-fifos{mode="naive"}' | filecheck %s --check-prefix=NAIVE

// Stream level: the depth is part of the `!dataflow.stream` type, so it changes on the stream op
// and on the task block arguments that receive it. `center` reads the row's sum before the row.

// min-bits: `gen` may be back-pressured, so only the row `center` waits for stays buffered, and
// `rowsum`'s reads take two slots of `%sa` at the unbounded makespan.
// MIN:      %sa = dataflow.stream : !dataflow.stream<tensor<1x16xf32>, depth = 2>
// MIN-NEXT: %sb = dataflow.stream : !dataflow.stream<tensor<1x16xf32>, depth = 15>
// MIN-NEXT: %ss = dataflow.stream : !dataflow.stream<tensor<1x16xf32>, depth = 1>

// The LP: `gen` is a source (no inputs), so it too waits for its readers (sources run late).
// CHECK:      %sa = dataflow.stream : !dataflow.stream<tensor<1x16xf32>, depth = 2>
// CHECK-NEXT: %sb = dataflow.stream : !dataflow.stream<tensor<1x16xf32>, depth = 15>
// CHECK-NEXT: %ss = dataflow.stream : !dataflow.stream<tensor<1x16xf32>, depth = 1>
// CHECK:      dataflow.task "gen" ins(%sa, %sb : !dataflow.stream<tensor<1x16xf32>, depth = 2>, !dataflow.stream<tensor<1x16xf32>, depth = 15>)
// CHECK-NEXT: ^{{.*}}(%a: !dataflow.stream<tensor<1x16xf32>, depth = 2>, %b: !dataflow.stream<tensor<1x16xf32>, depth = 15>):
// CHECK:      dataflow.task "center" ins(%ss, %sb : !dataflow.stream<tensor<1x16xf32>, depth = 1>, !dataflow.stream<tensor<1x16xf32>, depth = 15>)

// NAIVE: %sa = dataflow.stream : !dataflow.stream<tensor<1x16xf32>, depth = 16>
// NAIVE: %ss = dataflow.stream : !dataflow.stream<tensor<1x16xf32>, depth = 1>

dataflow.kernel "center"() : () -> () {
  %sa = dataflow.stream : !dataflow.stream<tensor<1x16xf32>, depth = 2>
  %sb = dataflow.stream : !dataflow.stream<tensor<1x16xf32>, depth = 2>
  %ss = dataflow.stream : !dataflow.stream<tensor<1x16xf32>, depth = 2>
  dataflow.task "gen" ins(%sa, %sb : !dataflow.stream<tensor<1x16xf32>, depth = 2>, !dataflow.stream<tensor<1x16xf32>, depth = 2>) outs(:) {
  ^bb0(%a: !dataflow.stream<tensor<1x16xf32>, depth = 2>, %b: !dataflow.stream<tensor<1x16xf32>, depth = 2>):
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %c1 = arith.constant 1 : index
    scf.for %i = %c0 to %c16 step %c1 {
      %t = tensor.empty() : tensor<1x16xf32>
      dataflow.stream_write %t, %a : tensor<1x16xf32> -> !dataflow.stream<tensor<1x16xf32>, depth = 2>
      dataflow.stream_write %t, %b : tensor<1x16xf32> -> !dataflow.stream<tensor<1x16xf32>, depth = 2>
    }
    dataflow.yield
  }
  dataflow.task "rowsum" ins(%sa, %ss : !dataflow.stream<tensor<1x16xf32>, depth = 2>, !dataflow.stream<tensor<1x16xf32>, depth = 2>) outs(:) {
  ^bb0(%a: !dataflow.stream<tensor<1x16xf32>, depth = 2>, %s: !dataflow.stream<tensor<1x16xf32>, depth = 2>):
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %c1 = arith.constant 1 : index
    %init = tensor.empty() : tensor<1x16xf32>
    %acc = scf.for %i = %c0 to %c16 step %c1 iter_args(%acc_i = %init) -> (tensor<1x16xf32>) {
      %t = dataflow.stream_read %a : !dataflow.stream<tensor<1x16xf32>, depth = 2> -> tensor<1x16xf32>
      %e = tensor.empty() : tensor<1x16xf32>
      %sum = linalg.add ins(%acc_i, %t : tensor<1x16xf32>, tensor<1x16xf32>) outs(%e : tensor<1x16xf32>) -> tensor<1x16xf32>
      scf.yield %sum : tensor<1x16xf32>
    }
    dataflow.stream_write %acc, %s : tensor<1x16xf32> -> !dataflow.stream<tensor<1x16xf32>, depth = 2>
    dataflow.yield
  }
  dataflow.task "center" ins(%ss, %sb : !dataflow.stream<tensor<1x16xf32>, depth = 2>, !dataflow.stream<tensor<1x16xf32>, depth = 2>) outs(:) {
  ^bb0(%s: !dataflow.stream<tensor<1x16xf32>, depth = 2>, %b: !dataflow.stream<tensor<1x16xf32>, depth = 2>):
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %c1 = arith.constant 1 : index
    %m = dataflow.stream_read %s : !dataflow.stream<tensor<1x16xf32>, depth = 2> -> tensor<1x16xf32>
    scf.for %i = %c0 to %c16 step %c1 {
      %t = dataflow.stream_read %b : !dataflow.stream<tensor<1x16xf32>, depth = 2> -> tensor<1x16xf32>
      %e = tensor.empty() : tensor<1x16xf32>
      %d = linalg.sub ins(%t, %m : tensor<1x16xf32>, tensor<1x16xf32>) outs(%e : tensor<1x16xf32>) -> tensor<1x16xf32>
    }
    dataflow.yield
  }
  dataflow.yield
}
