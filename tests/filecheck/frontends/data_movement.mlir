// RUN: %python -m frontends.dump rope embedding cat | filecheck %s

// CHECK-LABEL: // case: rope
// RoPE: the cos/sin tables depend on no input, so they are folded into named constant arguments;
// rotate-half is two extract_slices, a negation and a concat.

// CHECK:      func.func @forward(%q: tensor<1x2x3x8xf32> {torch.name = "q", torch.kind = "input"}, %cos: tensor<3x8xf32> {torch.name = "folded.cos", torch.kind = "constant"}, %sin: tensor<3x8xf32> {torch.name = "folded.sin", torch.kind = "constant"})
// CHECK-NOT:  math.cos
// CHECK:      %[[HI:.*]] = tensor.extract_slice %q[0, 0, 0, 4] [1, 2, 3, 4] [1, 1, 1, 1]
// CHECK:      %[[NEG:.*]] = linalg.generic {{.*}} ins(%[[HI]]
// CHECK:        arith.negf
// CHECK:      %[[LO:.*]] = tensor.extract_slice %q[0, 0, 0, 0] [1, 2, 3, 4] [1, 1, 1, 1]
// CHECK:      %[[ROT:.*]] = tensor.concat dim(3) %[[NEG]], %[[LO]]
// CHECK:      affine_map<(d0, d1, d2, d3) -> (d2, d3)>{{.*}} ins(%q, %cos
// CHECK:      ins(%[[ROT]], %sin
// CHECK:        arith.addf
// CHECK-NOT:  math.sin

// CHECK-LABEL: // case: embedding
// aten.embedding: a generic over (tokens.., hidden) that extracts table[id, d] from the named
// weight.

// CHECK:      func.func @forward(%input: tensor<1x3xi64> {{.*}}, %p_weight: tensor<16x8xf32> {torch.name = "weight", torch.kind = "parameter"}) -> tensor<1x3x8xf32>
// CHECK:      linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%input : tensor<1x3xi64>)
// CHECK-NEXT: ^bb0(%[[ID:.*]]: i64, %{{.*}}: f32):
// CHECK-NEXT:   %[[D:.*]] = linalg.index 2 : index
// CHECK-NEXT:   %[[ROW:.*]] = arith.index_cast %[[ID]] : i64 to index
// CHECK-NEXT:   %[[V:.*]] = tensor.extract %p_weight[%[[ROW]], %[[D]]] : tensor<16x8xf32>
// CHECK-NEXT:   linalg.yield %[[V]] : f32

// CHECK-LABEL: // case: cat
// aten.cat: tensor.concat along the dim.

// CHECK:      %[[R:.*]] = tensor.concat dim(1) %x, %y : (tensor<2x3x4xf32>, tensor<2x5x4xf32>) -> tensor<2x8x4xf32>
// CHECK-NEXT: func.return %[[R]]
