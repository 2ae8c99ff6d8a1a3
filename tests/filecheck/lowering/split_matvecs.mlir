// RUN: streamdsl-opt %s -p 'split-matvecs{parts=2}' | filecheck %s
// RUN: streamdsl-opt %s -p 'split-matvecs{parts=4}' | filecheck %s --check-prefix=FOUR
// RUN: streamdsl-opt %s -p 'split-matvecs' | filecheck %s --check-prefix=NONE
// RUN: not streamdsl-opt %s -p 'split-matvecs{parts=1}' 2>&1 | filecheck %s --check-prefix=BAD

// relu(x @ W^T), W 8x4 f32 at tile 2, as lower() leaves it: the matvec k0_matmul walks 4 output
// tiles, each reading the 2 tiles of x (a dma_load replayed 4 times) and 2 tiles of W. Split in
// 2: each part walks 2 output tiles (its outer loop 0..4 and 4..8), reads x replayed twice from a
// dma_load of its own and the 4x4 box of W at row 0 or 4; a concat joins the parts for k1_map
// (an element-wise map that reads no HBM: not split).

// CHECK:      %[[X0:.*]] = dataflow.dma_load %x_1 : tensor<1x4xf32> -> !dataflow.itensor<1x2xf32, [2, 2] * [2, 2], (d0, d1) -> (0, d1)>
// CHECK-NEXT: %[[X1:.*]] = dataflow.dma_load %x_1 : tensor<1x4xf32> -> !dataflow.itensor<1x2xf32, [2, 2] * [2, 2], (d0, d1) -> (0, d1)>
// CHECK-NEXT: %[[W0:.*]] = dataflow.dma_load %p_l_weight_1 {offsets = array<i64: 0, 0>} : tensor<8x4xf32> -> !dataflow.itensor<2x2xf32, [2, 2] * [2, 2], (d0, d1) -> (d0, d1)>
// CHECK-NEXT: %[[W1:.*]] = dataflow.dma_load %p_l_weight_1 {offsets = array<i64: 4, 0>} : tensor<8x4xf32> -> !dataflow.itensor<2x2xf32, [2, 2] * [2, 2], (d0, d1) -> (d0, d1)>
// CHECK:      %[[P0:.*]] = dataflow.task "k0_matmul_p0" ins(%[[X0]], %[[W0]] : {{.*}}) outs(%{{.*}} : !dataflow.itensor<1x2xf32, [2] * [2], (d0) -> (0, d0)>)
// CHECK:        arith.constant 2 : index
// CHECK-NEXT:   %[[LB0:.*]] = arith.constant 0 : index
// CHECK-NEXT:   %[[UB0:.*]] = arith.constant 4 : index
// CHECK-NEXT:   scf.for %{{.*}} = %[[LB0]] to %[[UB0]] step
// CHECK:      %[[P1:.*]] = dataflow.task "k0_matmul_p1" ins(%[[X1]], %[[W1]] : {{.*}})
// CHECK:        arith.constant 2 : index
// CHECK-NEXT:   %[[LB1:.*]] = arith.constant 4 : index
// CHECK-NEXT:   %[[UB1:.*]] = arith.constant 8 : index
// CHECK-NEXT:   scf.for %{{.*}} = %[[LB1]] to %[[UB1]] step
// CHECK:      %[[CAT:.*]] = dataflow.itensor_concat %[[P0]], %[[P1]] {dim = 1 : i64} : {{.*}} -> !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>
// CHECK:      dataflow.task "k1_map" ins(%[[CAT]] :
// CHECK-NOT:  k1_map_p

// FOUR-COUNT-4: dataflow.dma_load %p_l_weight_1 {offsets = array<i64: {{[0246]}}, 0>} : tensor<8x4xf32> -> !dataflow.itensor<2x2xf32, [1, 2] * [2, 2], (d0, d1) -> (d0, d1)>
// FOUR:         dataflow.task "k0_matmul_p3"
// FOUR:         dataflow.itensor_concat {{.*}} {dim = 1 : i64}

// Without `parts`, only tasks with a `split` attribute (a design plan's) are split: none here.
// NONE:     dataflow.task "k0_matmul" ins
// NONE-NOT: _p0

// BAD: split-matvecs: parts=1; give 0 (the tasks' `split` attributes) or 2 or more

builtin.module {
  func.func @forward(%x: tensor<1x4xf32> {torch.name = "x", torch.kind = "input"}, %p_l_weight: tensor<8x4xf32> {torch.name = "l.weight", torch.kind = "parameter"}) -> tensor<1x8xf32> {
    %0 = dataflow.kernel "forward"(%x, %p_l_weight) : (tensor<1x4xf32>, tensor<8x4xf32>) -> tensor<1x8xf32> {
    ^bb0(%x_1: tensor<1x4xf32>, %p_l_weight_1: tensor<8x4xf32>):
      %1 = dataflow.dma_load %x_1 : tensor<1x4xf32> -> !dataflow.itensor<1x2xf32, [4, 2] * [2, 2], (d0, d1) -> (0, d1)>
      %2 = dataflow.dma_load %p_l_weight_1 : tensor<8x4xf32> -> !dataflow.itensor<2x2xf32, [4, 2] * [2, 2], (d0, d1) -> (d0, d1)>
      %3 = dataflow.itensor_empty : !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>
      %4 = dataflow.task "k0_matmul" ins(%1, %2 : !dataflow.itensor<1x2xf32, [4, 2] * [2, 2], (d0, d1) -> (0, d1)>, !dataflow.itensor<2x2xf32, [4, 2] * [2, 2], (d0, d1) -> (d0, d1)>) outs(%3 : !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>) -> !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)> {
      ^bb0(%5: !dataflow.itensor<1x2xf32, [4, 2] * [2, 2], (d0, d1) -> (0, d1)>, %6: !dataflow.itensor<2x2xf32, [4, 2] * [2, 2], (d0, d1) -> (d0, d1)>, %7: !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>):
        %8 = arith.constant 0 : index
        %9 = arith.constant 8 : index
        %10 = arith.constant 2 : index
        %11 = scf.for %12 = %8 to %9 step %10 iter_args(%13 = %7) -> (!dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>) {
          %14 = arith.constant 0.000000e+00 : f32
          %15 = tensor.empty() : tensor<1x2xf32>
          %16 = linalg.fill ins(%14 : f32) outs(%15 : tensor<1x2xf32>) -> tensor<1x2xf32>
          %17 = arith.constant 0 : index
          %18 = arith.constant 4 : index
          %19 = arith.constant 2 : index
          %20 = scf.for %21 = %17 to %18 step %19 iter_args(%22 = %16) -> (tensor<1x2xf32>) {
            %23 = dataflow.itensor_read %5 : !dataflow.itensor<1x2xf32, [4, 2] * [2, 2], (d0, d1) -> (0, d1)> -> tensor<1x2xf32>
            %24 = dataflow.itensor_read %6 : !dataflow.itensor<2x2xf32, [4, 2] * [2, 2], (d0, d1) -> (d0, d1)> -> tensor<2x2xf32>
            %25 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%23, %24 : tensor<1x2xf32>, tensor<2x2xf32>) outs(%22 : tensor<1x2xf32>) {
            ^bb0(%26: f32, %27: f32, %28: f32):
              %29 = arith.mulf %26, %27 : f32
              %30 = arith.addf %29, %28 : f32
              linalg.yield %30 : f32
            } -> tensor<1x2xf32>
            scf.yield %25 : tensor<1x2xf32>
          }
          %31 = dataflow.itensor_write %20, %13 : tensor<1x2xf32> -> !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>
          scf.yield %31 : !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>
        }
        dataflow.yield %11 : !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>
      }
      %5 = dataflow.itensor_empty : !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>
      %6 = dataflow.task "k1_map" ins(%4 : !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>) outs(%5 : !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>) -> !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)> {
      ^bb0(%7: !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>, %8: !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>):
        %9 = arith.constant 0 : index
        %10 = arith.constant 8 : index
        %11 = arith.constant 2 : index
        %12 = scf.for %13 = %9 to %10 step %11 iter_args(%14 = %8) -> (!dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>) {
          %15 = tensor.empty() : tensor<1x2xf32>
          %16 = dataflow.itensor_read %7 : !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)> -> tensor<1x2xf32>
          %17 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%16 : tensor<1x2xf32>) outs(%15 : tensor<1x2xf32>) {
          ^bb0(%18: f32, %19: f32):
            %20 = arith.constant 0.000000e+00 : f32
            %21 = arith.maximumf %18, %20 : f32
            linalg.yield %21 : f32
          } -> tensor<1x2xf32>
          %22 = dataflow.itensor_write %17, %14 : tensor<1x2xf32> -> !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>
          scf.yield %22 : !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>
        }
        dataflow.yield %12 : !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)>
      }
      %7 = dataflow.dma_store %6 : !dataflow.itensor<1x2xf32, [4] * [2], (d0) -> (0, d0)> -> tensor<1x8xf32>
      dataflow.yield %7 : tensor<1x8xf32>
    }
    func.return %0 : tensor<1x8xf32>
  }
}
