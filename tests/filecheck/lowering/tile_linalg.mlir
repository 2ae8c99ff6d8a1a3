// RUN: streamdsl-opt %s -p 'tile-linalg{default-tile=16}' | filecheck %s
// RUN: streamdsl-opt %s -p 'tile-linalg{default-tile=48}' | filecheck %s --check-prefix=DIV

// A matvec then a map behind a reshape. Parallel loops outermost carry the result tensor, the
// reduction loop inside carries one output tile started from the fill; slices sit at the loop
// induction variables the operand maps name. Tile sizes are each loop's largest divisor <= the
// default (48 -> 32 for the 32-wide dim, 32 for the 64-wide reduction).

func.func @mv(%x: tensor<1x64xf32>, %w: tensor<64x32xf32>) -> tensor<1x1x32xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %e0 = tensor.empty() : tensor<1x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e0 : tensor<1x32xf32>) -> tensor<1x32xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : tensor<1x64xf32>, tensor<64x32xf32>) outs(%acc : tensor<1x32xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  } -> tensor<1x32xf32>
  %y3 = tensor.expand_shape %y [[0], [1, 2]] output_shape [1, 1, 32] : tensor<1x32xf32> into tensor<1x1x32xf32>
  %e1 = tensor.empty() : tensor<1x1x32xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%y3 : tensor<1x1x32xf32>) outs(%e1 : tensor<1x1x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %t = math.tanh %a : f32
    linalg.yield %t : f32
  } -> tensor<1x1x32xf32>
  func.return %r : tensor<1x1x32xf32>
}

// CHECK-LABEL: func.func @mv
// CHECK:       %[[ACC:.*]] = linalg.fill
// CHECK:       %[[Y:.*]] = scf.for %[[N:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[OUT:.*]] = %[[ACC]]) -> (tensor<1x32xf32>) {
// CHECK-NEXT:    %[[T0:.*]] = tensor.extract_slice %[[OUT]][0, %[[N]]] [1, 16] [1, 1] : tensor<1x32xf32> to tensor<1x16xf32>
// CHECK:         %[[R:.*]] = scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[A:.*]] = %[[T0]]) -> (tensor<1x16xf32>) {
// CHECK-NEXT:      %[[XT:.*]] = tensor.extract_slice %x[0, %[[K]]] [1, 16] [1, 1]
// CHECK-NEXT:      %[[WT:.*]] = tensor.extract_slice %w[%[[K]], %[[N]]] [16, 16] [1, 1]
// CHECK-NEXT:      %[[G:.*]] = linalg.generic {{.*}} ins(%[[XT]], %[[WT]] : tensor<1x16xf32>, tensor<16x16xf32>) outs(%[[A]] : tensor<1x16xf32>)
// CHECK:           scf.yield %[[G]] : tensor<1x16xf32>
// CHECK:         %[[I:.*]] = tensor.insert_slice %[[R]] into %[[OUT]][0, %[[N]]] [1, 16] [1, 1]
// CHECK-NEXT:    scf.yield %[[I]]
// CHECK-NEXT:  } {tile_sizes = array<i64: 1, 16, 16>}
// CHECK:       tensor.expand_shape %[[Y]]
// CHECK:       } {tile_sizes = array<i64: 1, 1, 16>}

// DIV:         } {tile_sizes = array<i64: 1, 32, 32>}
// DIV:         } {tile_sizes = array<i64: 1, 1, 32>}
