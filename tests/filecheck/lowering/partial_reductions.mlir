// RUN: streamdsl-opt %s -p 'partial-reductions' | filecheck %s
// RUN: streamdsl-opt %s -p 'partial-reductions{max_elements=32}' | filecheck %s --check-prefix=SMALL
// RUN: streamdsl-opt %s -p 'partial-reductions{lanes=0}' | filecheck %s --check-prefix=LANES
// RUN: not streamdsl-opt %s -p 'partial-reductions{max_elements=0}' 2>&1 | filecheck %s --check-prefix=BAD

// A task summing the squares of x (1x256, four tiles of 64) and another taking its absolute
// maximum: each reduces a tile into the loop-carried value. The carried value becomes a 1x64 tile
// of partials, folded element-wise each iteration (the squares computed first), and reduced into
// the initial value once after the loop; each task (it had no `unroll`) gets 16 lanes, or none
// with lanes=0.

// CHECK:      dataflow.task "sumsq" {{.*}} attributes {unroll = 16 : i64}
// CHECK:        %[[Z:.*]] = arith.constant -0.000000e+00 : f32
// CHECK:        %[[P0:.*]] = linalg.fill ins(%[[Z]] : f32) outs(%{{.*}} : tensor<1x64xf32>) -> tensor<1x64xf32>
// CHECK:        %[[L:.*]] = scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[P:.*]] = %[[P0]]) -> (tensor<1x64xf32>) {
// CHECK-NEXT:     %[[T:.*]] = dataflow.itensor_read
// CHECK:          %[[SQ:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]{{.*}} ins(%[[T]] : tensor<1x64xf32>)
// CHECK:            arith.mulf
// CHECK:          %[[U:.*]] = linalg.generic {{.*}} ins(%[[P]], %[[SQ]] : tensor<1x64xf32>, tensor<1x64xf32>)
// CHECK-NEXT:     ^{{.*}}(%[[A:.*]]: f32, %[[B:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT:       %[[S:.*]] = arith.addf %[[B]], %[[A]] : f32
// CHECK:          scf.yield %[[U]] : tensor<1x64xf32>
// CHECK:        %[[R:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]{{.*}} ins(%[[L]] : tensor<1x64xf32>) outs(%[[INIT:.*]] : tensor<1x1xf32>)
// CHECK-NEXT:   ^{{.*}}(%[[X:.*]]: f32, %[[O:.*]]: f32):
// CHECK-NEXT:     arith.addf %[[X]], %[[O]] : f32
// CHECK:        dataflow.itensor_write %[[R]]
// CHECK:      dataflow.task "absmax"
// CHECK:        arith.constant 0xff800000 : f32
// CHECK:        scf.for {{.*}} -> (tensor<1x64xf32>)
// CHECK:          math.absf
// CHECK:          arith.maximumf
// CHECK:        iterator_types = ["parallel", "reduction"]
// CHECK:          arith.maximumf

// SMALL-NOT:  -> (tensor<1x64xf32>)

// LANES-NOT:  unroll

// BAD: partial-reductions: max_elements=0, lanes=16; give max_elements of 1 or more

!x = !dataflow.itensor<1x64xf32, [1, 4] * [1, 64], (d0, d1) -> (d0, d1)>
!y = !dataflow.itensor<1x1xf32, [1] * [1], (d0) -> (d0, 0)>
func.func @norms(%x: tensor<1x256xf32>) -> (tensor<1x1xf32>, tensor<1x1xf32>) {
  %s, %m = dataflow.kernel "norms"(%x) : (tensor<1x256xf32>) -> (tensor<1x1xf32>, tensor<1x1xf32>) {
  ^bb0(%xa: tensor<1x256xf32>):
    %xs = dataflow.dma_load %xa : tensor<1x256xf32> -> !x
    %xf:2 = dataflow.itensor_fork %xs : !x -> !x, !x
    %e = dataflow.itensor_empty : !y
    %sq = dataflow.task "sumsq" ins(%xf#0 : !x) outs(%e : !y) -> !y {
    ^bb0(%in: !x, %o: !y):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c4 = arith.constant 4 : index
      %zero = arith.constant 0.0 : f32
      %ze = tensor.empty() : tensor<1x1xf32>
      %z0 = linalg.fill ins(%zero : f32) outs(%ze : tensor<1x1xf32>) -> tensor<1x1xf32>
      %sum = scf.for %k = %c0 to %c4 step %c1 iter_args(%acc = %z0) -> (tensor<1x1xf32>) {
        %t = dataflow.itensor_read %in : !x -> tensor<1x64xf32>
        %n = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, 0)>], iterator_types = ["parallel", "reduction"]} ins(%t : tensor<1x64xf32>) outs(%acc : tensor<1x1xf32>) {
        ^bb0(%a: f32, %b: f32):
          %sq2 = arith.mulf %a, %a : f32
          %r = arith.addf %sq2, %b : f32
          linalg.yield %r : f32
        } -> tensor<1x1xf32>
        scf.yield %n : tensor<1x1xf32>
      }
      %w = dataflow.itensor_write %sum, %o : tensor<1x1xf32> -> !y
      dataflow.yield %w : !y
    }
    %e2 = dataflow.itensor_empty : !y
    %mx = dataflow.task "absmax" ins(%xf#1 : !x) outs(%e2 : !y) -> !y {
    ^bb0(%in: !x, %o: !y):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c4 = arith.constant 4 : index
      %zero = arith.constant 0.0 : f32
      %ze = tensor.empty() : tensor<1x1xf32>
      %z0 = linalg.fill ins(%zero : f32) outs(%ze : tensor<1x1xf32>) -> tensor<1x1xf32>
      %max = scf.for %k = %c0 to %c4 step %c1 iter_args(%acc = %z0) -> (tensor<1x1xf32>) {
        %t = dataflow.itensor_read %in : !x -> tensor<1x64xf32>
        %n = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, 0)>], iterator_types = ["parallel", "reduction"]} ins(%t : tensor<1x64xf32>) outs(%acc : tensor<1x1xf32>) {
        ^bb0(%a: f32, %b: f32):
          %abs = math.absf %a : f32
          %r = arith.maximumf %b, %abs : f32
          linalg.yield %r : f32
        } -> tensor<1x1xf32>
        scf.yield %n : tensor<1x1xf32>
      }
      %w = dataflow.itensor_write %max, %o : tensor<1x1xf32> -> !y
      dataflow.yield %w : !y
    }
    %ss = dataflow.dma_store %sq : !y -> tensor<1x1xf32>
    %ms = dataflow.dma_store %mx : !y -> tensor<1x1xf32>
    dataflow.yield %ss, %ms : tensor<1x1xf32>, tensor<1x1xf32>
  }
  func.return %s, %m : tensor<1x1xf32>, tensor<1x1xf32>
}
