// RUN: not streamdsl-opt %s -p insert-converters 2>&1 | filecheck %s

// The producer writes every other element (step 2, tile 1); the consumer reads them all.
// CHECK: insert-converters: dataflow.itensor_cast {{.*}} destination token 1 reads elements the source never writes
func.func @gaps(%s: !dataflow.itensor<1xf32, [4] * [2], (d0) -> (d0)>) -> !dataflow.itensor<1xf32, [7] * [1], (d0) -> (d0)> {
  %c = dataflow.itensor_cast %s : !dataflow.itensor<1xf32, [4] * [2], (d0) -> (d0)> -> !dataflow.itensor<1xf32, [7] * [1], (d0) -> (d0)>
  func.return %c : !dataflow.itensor<1xf32, [7] * [1], (d0) -> (d0)>
}
