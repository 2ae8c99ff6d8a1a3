// RUN: streamdsl-opt %s -p 'tile-linalg,form-kernels,fuse-kernels' | filecheck %s

// Views across fused edges: the KV-cache pattern (the cache in HBM concatenated with a computed
// row, and returned) becomes an itensor_concat of a dma_load and the computed stream; two static
// slices that cut a computed tensor become one itensor_chunk (after a converter to tiles that do
// not straddle the cut). The computed stream feeds both, through a fork.

func.func @views(%x: tensor<1x8xf32>, %past: tensor<2x8xf32>) -> (tensor<3x8xf32>, tensor<1x4xf32>) {
  %e0 = tensor.empty() : tensor<1x8xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<1x8xf32>) outs(%e0 : tensor<1x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %t = math.tanh %a : f32
    linalg.yield %t : f32
  } -> tensor<1x8xf32>
  %c = tensor.concat dim(0) %past, %y : (tensor<2x8xf32>, tensor<1x8xf32>) -> tensor<3x8xf32>
  %lo = tensor.extract_slice %y[0, 0] [1, 4] [1, 1] : tensor<1x8xf32> to tensor<1x4xf32>
  %hi = tensor.extract_slice %y[0, 4] [1, 4] [1, 1] : tensor<1x8xf32> to tensor<1x4xf32>
  %e1 = tensor.empty() : tensor<1x4xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%lo, %hi : tensor<1x4xf32>, tensor<1x4xf32>) outs(%e1 : tensor<1x4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %t = arith.addf %a, %b : f32
    linalg.yield %t : f32
  } -> tensor<1x4xf32>
  func.return %c, %s : tensor<3x8xf32>, tensor<1x4xf32>
}

// CHECK-LABEL: func.func @views
// CHECK-NEXT:  %[[C:.*]], %[[S:.*]] = dataflow.kernel "views"(%x, %past)
// CHECK:         %[[Y:.*]] = dataflow.task "k0_map"
// CHECK:         %[[Y0:.*]], %[[Y1:.*]] = dataflow.itensor_fork %[[Y]]
// CHECK-NEXT:    %[[Q:.*]] = dataflow.itensor_converter %[[Y0]] : {{.*}} -> !dataflow.itensor<1x4xf32, [1, 2] * [1, 4], (d0, d1) -> (d0, d1)>
// CHECK-NEXT:    %[[LO:.*]], %[[HI:.*]] = dataflow.itensor_chunk %[[Q]] {dim = 1 : i64}
// CHECK:         dataflow.task "k1_map"
// CHECK:         %[[P:.*]] = dataflow.dma_load %{{.*}} : tensor<2x8xf32> -> !dataflow.itensor<1x8xf32, [2] * [1], (d0) -> (d0, 0)>
// CHECK-NEXT:    %[[R:.*]] = dataflow.itensor_cast %[[Y1]]
// CHECK-NEXT:    %[[W:.*]] = dataflow.itensor_concat %[[P]], %[[R]] {dim = 0 : i64} {{.*}} -> !dataflow.itensor<1x8xf32, [3, 1] * [1, 8], (d0, d1) -> (d0, d1)>
// CHECK-NEXT:    %[[WS:.*]] = dataflow.dma_store %[[W]] {{.*}} -> tensor<3x8xf32>
// CHECK-NEXT:    dataflow.yield %[[WS]], %{{.*}} : tensor<3x8xf32>, tensor<1x4xf32>
// CHECK:       func.return %[[C]], %[[S]]
