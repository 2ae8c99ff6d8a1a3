// RUN: streamdsl-opt %s -p 'tile-linalg{default-tile=16},form-kernels' | filecheck %s

// Each tiled nest becomes a kernel of one task between DMAs; the port types are read off the
// loops. The matvec's x is re-read for each of the 2 output tiles (a reuse loop, d0 unused by its
// map), W streams a column of 16x16 tiles at a time ((d0, d1) -> (d1, d0)), the accumulator
// starts from a fill on chip, and each finished tile is written once per parallel iteration.

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
// CHECK-NEXT:  %[[Y:.*]] = dataflow.kernel "k0_matmul"(%x, %w)
// CHECK:         dataflow.dma_load %{{.*}} : tensor<1x64xf32> -> !dataflow.itensor<1x16xf32, [2, 4] * [16, 16], (d0, d1) -> (0, d1)>
// CHECK-NEXT:    dataflow.dma_load %{{.*}} : tensor<64x32xf32> -> !dataflow.itensor<16x16xf32, [2, 4] * [16, 16], (d0, d1) -> (d1, d0)>
// CHECK-NEXT:    dataflow.itensor_empty : !dataflow.itensor<1x16xf32, [2] * [16], (d0) -> (0, d0)>
// CHECK-NEXT:    dataflow.task "k0_matmul"
// CHECK:           scf.for
// CHECK:             linalg.fill
// CHECK:             scf.for
// CHECK-NEXT:          dataflow.itensor_read {{.*}} -> tensor<1x16xf32>
// CHECK-NEXT:          dataflow.itensor_read {{.*}} -> tensor<16x16xf32>
// CHECK-NEXT:          linalg.generic
// CHECK:             dataflow.itensor_write
// CHECK:         dataflow.dma_store %{{.*}} : !dataflow.itensor<1x16xf32, [2] * [16], (d0) -> (0, d0)> -> tensor<1x32xf32>
// CHECK:       %[[Y3:.*]] = tensor.expand_shape %[[Y]]
// CHECK-NEXT:  %[[R:.*]] = dataflow.kernel "k1_map"(%[[Y3]])
// CHECK:         dataflow.dma_load %{{.*}} : tensor<1x1x32xf32> -> !dataflow.itensor<1x1x16xf32, [2] * [16], (d0) -> (0, 0, d0)>
// CHECK:             tensor.empty() : tensor<1x1x16xf32>
// CHECK-NEXT:        dataflow.itensor_read
// CHECK-NEXT:        linalg.generic
// CHECK:       func.return %[[R]]
