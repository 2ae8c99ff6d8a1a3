// RUN: streamdsl-opt %s -p 'tile-batch-loops{default-tile=4 min-batch-beats=0}' | filecheck %s
// RUN: streamdsl-opt %s -p 'tile-batch-loops{default-tile=4 min-batch-beats=0},tile-linalg{default-tile=4}' | filecheck %s --check-prefix=TILED
// RUN: streamdsl-opt %s -p 'tile-batch-loops{default-tile=4}' | filecheck %s --check-prefix=SHORT

// Attention over 2 heads, 1 query, 8 keys of 4 dims: the scores s[h, i, j] = sum_d q[h, i, d] * k[h, d, j]
// (a batch loop h: every operand indexes it), exp of the scores behind a 1x2 -> 2 reshape, and the
// values o[h, i, d] = sum_j p[h, i, j] * v[h, j, d]. Every loop on the heads dim is planned at 1, the
// rest at the default (largest divisor <= 4): the exp through the reshape, the values contraction
// through the exp's result. The unrelated exp of %u (same shape, no contraction) keeps its default,
// and so does the matvec %y (its weight has no batch dim).

func.func @attention(%q: tensor<2x1x4xf32>, %k: tensor<2x4x8xf32>, %v: tensor<2x8x4xf32>, %u: tensor<1x2x1x8xf32>,
                     %x: tensor<1x4xf32>, %w: tensor<4x4xf32>) -> (tensor<2x1x4xf32>, tensor<1x2x1x8xf32>, tensor<1x4xf32>) {
  %f0 = arith.constant 0.000000e+00 : f32
  %e0 = tensor.empty() : tensor<2x1x8xf32>
  %z0 = linalg.fill ins(%f0 : f32) outs(%e0 : tensor<2x1x8xf32>) -> tensor<2x1x8xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%q, %k : tensor<2x1x4xf32>, tensor<2x4x8xf32>) outs(%z0 : tensor<2x1x8xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  } -> tensor<2x1x8xf32>
  %s4 = tensor.expand_shape %s [[0, 1], [2], [3]] output_shape [1, 2, 1, 8] : tensor<2x1x8xf32> into tensor<1x2x1x8xf32>
  %e1 = tensor.empty() : tensor<1x2x1x8xf32>
  %x4 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%s4 : tensor<1x2x1x8xf32>) outs(%e1 : tensor<1x2x1x8xf32>) {
  ^bb0(%a: f32, %c: f32):
    %r = math.exp %a : f32
    linalg.yield %r : f32
  } -> tensor<1x2x1x8xf32>
  %p3 = tensor.collapse_shape %x4 [[0, 1], [2], [3]] : tensor<1x2x1x8xf32> into tensor<2x1x8xf32>
  %e2 = tensor.empty() : tensor<2x1x4xf32>
  %z2 = linalg.fill ins(%f0 : f32) outs(%e2 : tensor<2x1x4xf32>) -> tensor<2x1x4xf32>
  %o = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%p3, %v : tensor<2x1x8xf32>, tensor<2x8x4xf32>) outs(%z2 : tensor<2x1x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  } -> tensor<2x1x4xf32>
  %ux = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%u : tensor<1x2x1x8xf32>) outs(%e1 : tensor<1x2x1x8xf32>) {
  ^bb0(%a: f32, %c: f32):
    %r = math.exp %a : f32
    linalg.yield %r : f32
  } -> tensor<1x2x1x8xf32>
  %e3 = tensor.empty() : tensor<1x4xf32>
  %z3 = linalg.fill ins(%f0 : f32) outs(%e3 : tensor<1x4xf32>) -> tensor<1x4xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : tensor<1x4xf32>, tensor<4x4xf32>) outs(%z3 : tensor<1x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  } -> tensor<1x4xf32>
  func.return %o, %ux, %y : tensor<2x1x4xf32>, tensor<1x2x1x8xf32>, tensor<1x4xf32>
}

// CHECK-LABEL: func.func @attention
// CHECK:       ins(%q, %k : {{.*}} attrs = {tile_sizes = array<i64: 1, 1, 4, 4>}
// CHECK:       ins(%s4 : {{.*}} attrs = {tile_sizes = array<i64: 1, 1, 1, 4>}
// CHECK:       ins(%p3, %v : {{.*}} attrs = {tile_sizes = array<i64: 1, 1, 4, 4>}
// CHECK:       ins(%u : tensor<1x2x1x8xf32>) outs(%e1 : tensor<1x2x1x8xf32>) {
// CHECK:       ins(%x, %w : tensor<1x4xf32>, tensor<4x4xf32>) outs(%z3 : tensor<1x4xf32>) {

// The heads loop is the outer loop of each nest, one head a tile.
// TILED-LABEL: func.func @attention
// TILED:       tensor.extract_slice %k[%{{.*}}, 0, %{{.*}}] [1, 4, 4] [1, 1, 1] : tensor<2x4x8xf32> to tensor<1x4x4xf32>
// TILED:       tensor.extract_slice %v[%{{.*}}, %{{.*}}, 0] [1, 4, 4] [1, 1, 1] : tensor<2x8x4xf32> to tensor<1x4x4xf32>

// At the default min-batch-beats (128), a head of these keys (4 x 8 f32, one beat) is too short: no plan.
// SHORT-LABEL: func.func @attention
// SHORT-NOT:   tile_sizes
