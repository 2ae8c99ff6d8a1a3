// RUN: streamdsl-opt %s -p 'tile-linalg{default-tile=4},form-kernels,fuse-kernels' | filecheck %s

// The values of attention in a decode step: the cache in HBM (keys x head dim) concatenated with
// the new row, read by the contraction `p @ v` head-dim tile by head-dim tile (its parallel loop)
// with the keys reduced inside. The concatenation streams in that order, taking each tile from
// the part it lies in (the cache's tiles loaded from HBM in that order too), so no converter
// buffers the cache between the concatenation and the contraction.

func.func @values(%p: tensor<1x5xf32>, %x: tensor<1x8xf32>, %past: tensor<4x8xf32>) -> tensor<1x8xf32> {
  %e0 = tensor.empty() : tensor<1x8xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<1x8xf32>) outs(%e0 : tensor<1x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %t = math.tanh %a : f32
    linalg.yield %t : f32
  } -> tensor<1x8xf32>
  %v = tensor.concat dim(0) %past, %y : (tensor<4x8xf32>, tensor<1x8xf32>) -> tensor<5x8xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %e1 = tensor.empty() : tensor<1x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x8xf32>) -> tensor<1x8xf32>
  %o = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%p, %v : tensor<1x5xf32>, tensor<5x8xf32>) outs(%acc : tensor<1x8xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  } -> tensor<1x8xf32>
  func.return %o : tensor<1x8xf32>
}

// CHECK-LABEL: func.func @values
// CHECK-NEXT:  %[[O:.*]] = dataflow.kernel "values"(%p, %x, %past)
// CHECK:         %[[Y:.*]] = dataflow.task "k0_map"
// CHECK-NOT:     dataflow.itensor_converter
// CHECK:         %[[C:.*]] = dataflow.dma_load %{{.*}} : tensor<4x8xf32> -> !dataflow.itensor<1x4xf32, [2, 4] * [1, 1], (d0, d1) -> (d1, (d0 * 4))>
// CHECK-NEXT:    %[[R:.*]] = dataflow.itensor_cast %[[Y]]
// CHECK-NEXT:    %[[V:.*]] = dataflow.itensor_concat %[[C]], %[[R]] {dim = 0 : i64} {{.*}} -> !dataflow.itensor<1x4xf32, [2, 5] * [4, 1], (d0, d1) -> (d1, d0)>
// CHECK-NOT:     dataflow.itensor_converter
// CHECK:         dataflow.task "k1_matmul" ins(%{{.*}}, %[[V]] :
// CHECK:       func.return %[[O]]
