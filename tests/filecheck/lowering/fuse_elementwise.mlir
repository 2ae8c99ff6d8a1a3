// RUN: streamdsl-opt %s -p fuse-elementwise | filecheck %s

// nn.Linear then GELU-like maps: the weight's transpose folds into the matmul's map (it reads
// %w as (d1, d2)), the bias broadcast becomes a generic that stays the accumulator (an init is
// not an input), and the two element-wise maps after the matmul fuse into one generic.

func.func @linear_act(%x: tensor<1x8xf32>, %w: tensor<16x8xf32>, %b: tensor<16xf32>) -> tensor<1x16xf32> {
  %e0 = tensor.empty() : tensor<8x16xf32>
  %wt = linalg.transpose ins(%w : tensor<16x8xf32>) outs(%e0 : tensor<8x16xf32>) permutation = [1, 0]
  %e1 = tensor.empty() : tensor<1x16xf32>
  %bb = linalg.broadcast ins(%b : tensor<16xf32>) outs(%e1 : tensor<1x16xf32>) dimensions = [0]
  %y = linalg.matmul ins(%x, %wt : tensor<1x8xf32>, tensor<8x16xf32>) outs(%bb : tensor<1x16xf32>) -> tensor<1x16xf32>
  %e2 = tensor.empty() : tensor<1x16xf32>
  %sq = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%y : tensor<1x16xf32>) outs(%e2 : tensor<1x16xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.mulf %a, %a : f32
    linalg.yield %m : f32
  } -> tensor<1x16xf32>
  %e3 = tensor.empty() : tensor<1x16xf32>
  %half = arith.constant 5.000000e-01 : f32
  %e4 = tensor.empty() : tensor<1x16xf32>
  %halves = linalg.fill ins(%half : f32) outs(%e4 : tensor<1x16xf32>) -> tensor<1x16xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%sq, %halves : tensor<1x16xf32>, tensor<1x16xf32>) outs(%e3 : tensor<1x16xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %m = arith.mulf %a, %c : f32
    linalg.yield %m : f32
  } -> tensor<1x16xf32>
  func.return %r : tensor<1x16xf32>
}

// CHECK-LABEL: func.func @linear_act
// CHECK-NOT:   linalg.transpose
// CHECK:       %[[B:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%b : tensor<16xf32>)
// CHECK:       %[[Y:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : tensor<1x8xf32>, tensor<16x8xf32>) outs(%[[B]] : tensor<1x16xf32>)
// CHECK:       %[[R:.*]] = linalg.generic {{.*}} ins(%[[Y]] : tensor<1x16xf32>)
// CHECK-NEXT:  ^bb0(%[[A:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT:    %[[C:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-NEXT:    %[[M:.*]] = arith.mulf %[[A]], %[[A]] : f32
// CHECK-NEXT:    %[[M2:.*]] = arith.mulf %[[M]], %[[C]] : f32
// CHECK-NEXT:    linalg.yield %[[M2]] : f32
// CHECK-NOT:   linalg.fill
// CHECK:       func.return %[[R]]
// CHECK-NOT:   linalg.generic
