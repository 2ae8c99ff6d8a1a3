// RUN: streamdsl-opt %s -p 'tile-quant-groups{default-tile=4},tile-linalg{default-tile=4}' | filecheck %s
// RUN: streamdsl-opt %s -p 'tile-linalg{default-tile=4}' | filecheck %s --check-prefix=DEFAULT

// A quantized linear layer as frontends.quant.QuantLinear imports (after fuse-elementwise): the
// integer matmul acc[m, n, g] = sum_j xq[m, g, j] * Wq[n, g, j] over 3 groups of 8 input channels,
// then the float group sum y[m, n] = sum_g float(acc[m, n, g]) * s[n, g]. The group loop (3 trips)
// is tiled at 1 in both, every other loop at the default (largest divisor <= 4); tile-linalg alone
// takes the 3 groups whole. A float matmul (mulf) is left alone.

func.func @qlinear(%x: tensor<2x1x3x8xi8>, %w: tensor<8x3x8xi4>, %s: tensor<8x3xf16>, %v: tensor<2x8xf32>, %u: tensor<8x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
  %c0 = arith.constant 0 : i32
  %e0 = tensor.empty() : tensor<2x8x3xi32>
  %z = linalg.fill ins(%c0 : i32) outs(%e0 : tensor<2x8x3xi32>) -> tensor<2x8x3xi32>
  %acc = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, 0, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%x, %w : tensor<2x1x3x8xi8>, tensor<8x3x8xi4>) outs(%z : tensor<2x8x3xi32>) {
  ^bb0(%a: i8, %b: i4, %c: i32):
    %ai = arith.extsi %a : i8 to i32
    %bi = arith.extsi %b : i4 to i32
    %p = arith.muli %ai, %bi : i32
    %r = arith.addi %c, %p : i32
    linalg.yield %r : i32
  } -> tensor<2x8x3xi32>
  %f0 = arith.constant 0.000000e+00 : f32
  %e1 = tensor.empty() : tensor<2x8xf32>
  %y0 = linalg.fill ins(%f0 : f32) outs(%e1 : tensor<2x8xf32>) -> tensor<2x8xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%acc, %s : tensor<2x8x3xi32>, tensor<8x3xf16>) outs(%y0 : tensor<2x8xf32>) {
  ^bb0(%a: i32, %b: f16, %c: f32):
    %af = arith.sitofp %a : i32 to f32
    %bf = arith.extf %b : f16 to f32
    %p = arith.mulf %af, %bf : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  } -> tensor<2x8xf32>
  %f = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%v, %u : tensor<2x8xf32>, tensor<8x8xf32>) outs(%y0 : tensor<2x8xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  } -> tensor<2x8xf32>
  func.return %y, %f : tensor<2x8xf32>, tensor<2x8xf32>
}

// CHECK-LABEL: func.func @qlinear
// CHECK:       tensor.extract_slice %w[%{{.*}}, %{{.*}}, %{{.*}}] [4, 1, 4] [1, 1, 1] : tensor<8x3x8xi4> to tensor<4x1x4xi4>
// CHECK:       } {tile_sizes = array<i64: 2, 4, 1, 4>}
// CHECK:       tensor.extract_slice %s[%{{.*}}, %{{.*}}] [4, 1] [1, 1] : tensor<8x3xf16> to tensor<4x1xf16>
// CHECK:       } {tile_sizes = array<i64: 2, 4, 1>}
// CHECK:       } {tile_sizes = array<i64: 2, 4, 4>}

// DEFAULT:     } {tile_sizes = array<i64: 2, 4, 3, 4>}
// DEFAULT:     } {tile_sizes = array<i64: 2, 4, 3>}
// DEFAULT:     } {tile_sizes = array<i64: 2, 4, 4>}
