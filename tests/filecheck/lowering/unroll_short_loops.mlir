// RUN: streamdsl-opt %s -p 'unroll-short-loops' | filecheck %s
// RUN: not streamdsl-opt %s -p 'unroll-short-loops{max_trips=1}' 2>&1 | filecheck %s --check-prefix=BAD

// A task summing x (1x4, two tiles of 2) twice over: its loop over 2 output tiles holds a loop of
// 2 iterations reading a tile each. That inner loop is unrolled (2 reads and 2 adds, the sum
// chained through them), so the output loop is the innermost one (pipelined). The second task's
// inner loop has 8 iterations (more than 2): kept.

// CHECK:      dataflow.task "sum"
// CHECK:        scf.for
// CHECK-NOT:    scf.for
// CHECK:          %[[T0:.*]] = dataflow.itensor_read %{{.*}}
// CHECK-NEXT:     %[[S0:.*]] = linalg.add ins(%[[T0]], %[[Z:.*]] : {{.*}})
// CHECK-NEXT:     %[[T1:.*]] = dataflow.itensor_read %{{.*}}
// CHECK-NEXT:     %[[S1:.*]] = linalg.add ins(%[[T1]], %[[S0]] : {{.*}})
// CHECK-NEXT:     dataflow.itensor_write %[[S1]]
// CHECK:      dataflow.task "long"
// CHECK:        scf.for
// CHECK:          scf.for

// BAD: unroll-short-loops: max_trips=1

!x = !dataflow.itensor<1x2xf32, [2, 2] * [2, 2], (d0, d1) -> (0, d1)>
!x8 = !dataflow.itensor<1x2xf32, [2, 8] * [2, 2], (d0, d1) -> (0, d1)>
!y = !dataflow.itensor<1x2xf32, [2] * [2], (d0) -> (0, d0)>
func.func @sums(%x: tensor<1x4xf32>, %x8: tensor<1x16xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>) {
  %y, %z = dataflow.kernel "sums"(%x, %x8) : (tensor<1x4xf32>, tensor<1x16xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>) {
  ^bb0(%xa: tensor<1x4xf32>, %xb: tensor<1x16xf32>):
    %xs = dataflow.dma_load %xa : tensor<1x4xf32> -> !x
    %e = dataflow.itensor_empty : !y
    %s = dataflow.task "sum" ins(%xs : !x) outs(%e : !y) -> !y {
    ^bb0(%in: !x, %o: !y):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      %r = scf.for %i = %c0 to %c2 step %c1 iter_args(%acc = %o) -> (!y) {
        %zero = arith.constant 0.0 : f32
        %ze = tensor.empty() : tensor<1x2xf32>
        %z0 = linalg.fill ins(%zero : f32) outs(%ze : tensor<1x2xf32>) -> tensor<1x2xf32>
        %sum = scf.for %k = %c0 to %c2 step %c1 iter_args(%part = %z0) -> (tensor<1x2xf32>) {
          %t = dataflow.itensor_read %in : !x -> tensor<1x2xf32>
          %n = linalg.add ins(%t, %part : tensor<1x2xf32>, tensor<1x2xf32>) outs(%part : tensor<1x2xf32>) -> tensor<1x2xf32>
          scf.yield %n : tensor<1x2xf32>
        }
        %w = dataflow.itensor_write %sum, %acc : tensor<1x2xf32> -> !y
        scf.yield %w : !y
      }
      dataflow.yield %r : !y
    }
    %xs8 = dataflow.dma_load %xb : tensor<1x16xf32> -> !x8
    %e8 = dataflow.itensor_empty : !y
    %l = dataflow.task "long" ins(%xs8 : !x8) outs(%e8 : !y) -> !y {
    ^bb0(%in: !x8, %o: !y):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      %c8 = arith.constant 8 : index
      %r = scf.for %i = %c0 to %c2 step %c1 iter_args(%acc = %o) -> (!y) {
        %zero = arith.constant 0.0 : f32
        %ze = tensor.empty() : tensor<1x2xf32>
        %z0 = linalg.fill ins(%zero : f32) outs(%ze : tensor<1x2xf32>) -> tensor<1x2xf32>
        %sum = scf.for %k = %c0 to %c8 step %c1 iter_args(%part = %z0) -> (tensor<1x2xf32>) {
          %t = dataflow.itensor_read %in : !x8 -> tensor<1x2xf32>
          %n = linalg.add ins(%t, %part : tensor<1x2xf32>, tensor<1x2xf32>) outs(%part : tensor<1x2xf32>) -> tensor<1x2xf32>
          scf.yield %n : tensor<1x2xf32>
        }
        %w = dataflow.itensor_write %sum, %acc : tensor<1x2xf32> -> !y
        scf.yield %w : !y
      }
      dataflow.yield %r : !y
    }
    %ys = dataflow.dma_store %s : !y -> tensor<1x4xf32>
    %zs = dataflow.dma_store %l : !y -> tensor<1x4xf32>
    dataflow.yield %ys, %zs : tensor<1x4xf32>, tensor<1x4xf32>
  }
  func.return %y, %z : tensor<1x4xf32>, tensor<1x4xf32>
}
