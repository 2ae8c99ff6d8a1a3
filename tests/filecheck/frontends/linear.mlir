// RUN: %python -m frontends.dump mm addmm bmm | filecheck %s

// CHECK-LABEL: // case: mm
// x @ W: aten.mm becomes linalg.matmul into a zero-filled accumulator; W stays a named argument.

// CHECK:      func.func @forward(%x: tensor<4x8xf32> {torch.name = "x", torch.kind = "input"}, %p_weight: tensor<8x16xf32> {torch.name = "weight", torch.kind = "parameter"}) -> tensor<4x16xf32>
// CHECK-NEXT:   %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:   %[[E:.*]] = tensor.empty() : tensor<4x16xf32>
// CHECK-NEXT:   %[[ACC:.*]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[E]] : tensor<4x16xf32>)
// CHECK-NEXT:   %[[R:.*]] = linalg.matmul ins(%x, %p_weight : tensor<4x8xf32>, tensor<8x16xf32>) outs(%[[ACC]] : tensor<4x16xf32>)
// CHECK-NEXT:   func.return %[[R]] : tensor<4x16xf32>

// CHECK-LABEL: // case: addmm
// nn.Linear: aten.addmm(bias, x, W^T). The weight is transposed, the bias broadcast into the
// matmul's accumulator.

// CHECK:      func.func @forward(%input: tensor<4x8xf32> {{.*}}, %p_weight: tensor<16x8xf32> {torch.name = "weight", torch.kind = "parameter"}, %p_bias: tensor<16xf32> {torch.name = "bias", torch.kind = "parameter"})
// CHECK:        %[[WT:.*]] = linalg.transpose ins(%p_weight:tensor<16x8xf32>) outs(%{{.*}}:tensor<8x16xf32>) permutation = [1, 0]
// CHECK:        %[[B:.*]] = linalg.broadcast ins(%p_bias:tensor<16xf32>) outs(%{{.*}}:tensor<4x16xf32>) dimensions = [0]
// CHECK-NEXT:   %[[R:.*]] = linalg.matmul ins(%input, %[[WT]] : tensor<4x8xf32>, tensor<8x16xf32>) outs(%[[B]] : tensor<4x16xf32>)
// CHECK-NEXT:   func.return %[[R]]

// CHECK-LABEL: // case: bmm
// aten.bmm: a batch-matmul linalg.generic (b, m, n, k) with k a reduction.

// CHECK:      linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%x, %y : tensor<2x4x8xf32>, tensor<2x8x3xf32>) outs(%{{.*}} : tensor<2x4x3xf32>)
// CHECK-NEXT: ^bb0(%[[A:.*]]: f32, %[[B:.*]]: f32, %[[ACC:.*]]: f32):
// CHECK-NEXT:   %[[P:.*]] = arith.mulf %[[A]], %[[B]] : f32
// CHECK-NEXT:   %[[S:.*]] = arith.addf %[[ACC]], %[[P]] : f32
// CHECK-NEXT:   linalg.yield %[[S]] : f32
