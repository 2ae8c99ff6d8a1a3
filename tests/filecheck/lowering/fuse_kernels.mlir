// RUN: streamdsl-opt %s -p 'tile-linalg{default-tile=8},form-kernels,fuse-kernels' | filecheck %s
// RUN: streamdsl-opt %s -p 'tile-linalg{default-tile=8},form-kernels,fuse-kernels{budget=0}' | filecheck %s --check-prefix=BUDGET0
// RUN: streamdsl-opt %s -p 'tile-linalg{default-tile=8},form-kernels,fuse-kernels,insert-converters' | filecheck %s --check-prefix=PLANNED

// matvec -> reshape -> tanh -> reshape -> matvec. The first edge streams in the same order on both
// sides (cost 0): fused through itensor_reassociate. The second matvec re-reads h once per output
// tile, so its edge needs a converter holding h (one bank of 32 floats, 128 bytes): fused within
// the default budget, left to HBM with budget 0 (Algorithm 2 starts a new group).

func.func @mlp(%x: tensor<1x64xf32>, %w: tensor<64x32xf32>, %v: tensor<32x16xf32>) -> tensor<1x16xf32> {
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
  %h3 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%y3 : tensor<1x1x32xf32>) outs(%e1 : tensor<1x1x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %t = math.tanh %a : f32
    linalg.yield %t : f32
  } -> tensor<1x1x32xf32>
  %h = tensor.collapse_shape %h3 [[0], [1, 2]] : tensor<1x1x32xf32> into tensor<1x32xf32>
  %e2 = tensor.empty() : tensor<1x16xf32>
  %acc2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<1x16xf32>) -> tensor<1x16xf32>
  %z = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%h, %v : tensor<1x32xf32>, tensor<32x16xf32>) outs(%acc2 : tensor<1x16xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  } -> tensor<1x16xf32>
  func.return %z : tensor<1x16xf32>
}

// CHECK-LABEL: func.func @mlp
// CHECK-NEXT:  %[[Z:.*]] = dataflow.kernel "mlp"(%x, %w, %v)
// CHECK:         %[[Y:.*]] = dataflow.task "k0_matmul"
// CHECK:         %[[Y3:.*]] = dataflow.itensor_reassociate %[[Y]] : !dataflow.itensor<1x8xf32, [4] * [8], (d0) -> (0, d0)> -> !dataflow.itensor<1x1x8xf32, [4] * [8], (d0) -> (0, 0, d0)>
// CHECK:         %[[H3:.*]] = dataflow.task "k1_map" ins(%[[Y3]]
// CHECK:         %[[H:.*]] = dataflow.itensor_reassociate %[[H3]] : {{.*}} -> !dataflow.itensor<1x8xf32, [4] * [8], (d0) -> (0, d0)>
// CHECK-NEXT:    %[[C:.*]] = dataflow.itensor_converter %[[H]] : !dataflow.itensor<1x8xf32, [4] * [8], (d0) -> (0, d0)> -> !dataflow.itensor<1x8xf32, [2, 4] * [8, 8], (d0, d1) -> (0, d1)>
// CHECK:         dataflow.task "k2_matmul" ins(%[[C]], %{{.*}} :
// CHECK:         %[[S:.*]] = dataflow.dma_store
// CHECK-NEXT:    dataflow.yield %[[S]]
// CHECK:       func.return %[[Z]]

// The first group's result leaves it through the reshape: the reshaped stream is what it stores.
// BUDGET0:      %[[H:.*]] = dataflow.kernel "k0_matmul"(%x, %w) : (tensor<1x64xf32>, tensor<64x32xf32>) -> tensor<1x32xf32>
// BUDGET0:      dataflow.task "k1_map"
// BUDGET0:      dataflow.itensor_reassociate
// BUDGET0-NEXT: dataflow.dma_store {{.*}} -> tensor<1x32xf32>
// BUDGET0:      %[[Z:.*]] = dataflow.kernel "k2_matmul"(%[[H]], %v)
// BUDGET0-NOT:  itensor_converter
// BUDGET0:      func.return %[[Z]]

// PLANNED:      dataflow.itensor_converter %{{.*}} {buffer_shape = array<i64: 1, 32>, shared_loops = 0 : i64}
