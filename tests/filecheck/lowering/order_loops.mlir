// RUN: streamdsl-opt %s -p 'order-loops' | filecheck %s

// The KV-cache pattern of attention: the cache (keys x head dim) transposed, behind a reshape,
// read by the scores' contraction key by key (its parallel loop) with the head dim reduced
// inside. The transpose's loops are permuted to visit its result in that order (keys outer), so
// its input is read in its own order and no converter has to buffer the transposed cache. A
// generic with two readers keeps its order, and so does one read in its own order.

func.func @cache(%q: tensor<1x4xf32>, %k: tensor<3x4xf32>) -> tensor<1x3xf32> {
  %e0 = tensor.empty() : tensor<4x3xf32>
  %kt = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1, d0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%k : tensor<3x4xf32>) outs(%e0 : tensor<4x3xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  } -> tensor<4x3xf32>
  %kt3 = tensor.expand_shape %kt [[0, 1], [2]] output_shape [1, 4, 3] : tensor<4x3xf32> into tensor<1x4x3xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %e1 = tensor.empty() : tensor<1x3xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x3xf32>) -> tensor<1x3xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (0, d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%q, %kt3 : tensor<1x4xf32>, tensor<1x4x3xf32>) outs(%acc : tensor<1x3xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  } -> tensor<1x3xf32>
  func.return %s : tensor<1x3xf32>
}

// CHECK-LABEL: func.func @cache
// CHECK:       linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1, d0)>], iterator_types = ["parallel", "parallel"]} ins(%k : tensor<3x4xf32>)
// CHECK:       tensor.expand_shape
// CHECK:       linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (0, d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>]

func.func @kept(%k: tensor<3x4xf32>) -> (tensor<4x3xf32>, tensor<4x3xf32>) {
  %e0 = tensor.empty() : tensor<4x3xf32>
  %kt = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1, d0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%k : tensor<3x4xf32>) outs(%e0 : tensor<4x3xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  } -> tensor<4x3xf32>
  %e1 = tensor.empty() : tensor<4x3xf32>
  %n = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%kt : tensor<4x3xf32>) outs(%e1 : tensor<4x3xf32>) {
  ^bb0(%a: f32, %o: f32):
    %t = arith.negf %a : f32
    linalg.yield %t : f32
  } -> tensor<4x3xf32>
  func.return %kt, %n : tensor<4x3xf32>, tensor<4x3xf32>
}

// CHECK-LABEL: func.func @kept
// CHECK:       linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1, d0)>, affine_map<(d0, d1) -> (d0, d1)>]
// CHECK:       linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>]
