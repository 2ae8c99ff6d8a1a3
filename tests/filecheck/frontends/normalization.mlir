// RUN: %python -m frontends.dump softmax layer_norm rms_norm | filecheck %s

// CHECK-LABEL: // case: softmax
// aten._softmax: max-reduce, exp(x - max), sum-reduce, divide. The reductions drop the reduced
// dim; expand_shape restores it (keepdim) and a constant-0 map result broadcasts it back.

// CHECK:      %[[NEGINF:.*]] = arith.constant 0xff800000 : f32
// CHECK:      %[[M0:.*]] = linalg.fill ins(%[[NEGINF]] : f32)
// CHECK-NEXT: %[[MAX:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x : tensor<2x4x8xf32>) outs(%[[M0]] : tensor<2x4xf32>)
// CHECK:        arith.maximumf
// CHECK:      %[[MK:.*]] = tensor.expand_shape %[[MAX]] {{\[}}[0 : i64], [1 : i64, 2 : i64]] output_shape [2, 4, 1]
// CHECK:      %[[E:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %[[MK]]
// CHECK:        arith.subf
// CHECK-NEXT:   math.exp
// CHECK:      %[[SUM:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[E]] : tensor<2x4x8xf32>)
// CHECK:        arith.addf
// CHECK:      %[[SK:.*]] = tensor.expand_shape %[[SUM]]
// CHECK:      linalg.generic {{.*}} ins(%[[E]], %[[SK]] : tensor<2x4x8xf32>, tensor<2x4x1xf32>)
// CHECK:        arith.divf

// CHECK-LABEL: // case: layer_norm
// aten.native_layer_norm: mean, centre, mean of squares, rsqrt(var + eps), then one generic for
// the normalisation with the named weight and bias.

// CHECK:      func.func @forward(%input: tensor<2x8xf32> {{.*}}, %p_weight: tensor<8xf32> {{.*}}, %p_bias: tensor<8xf32> {{.*}})
// CHECK:      linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%input : tensor<2x8xf32>)
// CHECK:        arith.addf
// CHECK:        arith.constant 1.250000e-01 : f32
// CHECK-NEXT:   arith.mulf
// CHECK:        arith.subf
// CHECK:        arith.mulf %[[D:.*]], %[[D]] : f32
// CHECK:      linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]}
// CHECK:        arith.constant 1.000000e-05 : f32
// CHECK-NEXT:   arith.addf
// CHECK-NEXT:   math.rsqrt
// CHECK:      linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, 0)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], {{.*}} ins(%{{.*}}, %{{.*}}, %p_weight, %p_bias
// CHECK-NEXT: ^bb0
// CHECK-NEXT:   arith.mulf
// CHECK-NEXT:   arith.mulf
// CHECK-NEXT:   arith.addf

// CHECK-LABEL: // case: rms_norm
// Llama's RMS norm: x * rsqrt(mean(x^2) + eps) * weight. pow(x, 2) is an exact x * x.

// CHECK:      ins(%x : tensor<2x8xf32>)
// CHECK:        arith.mulf %[[X:.*]], %[[X]] : f32
// CHECK:      iterator_types = ["parallel", "reduction"]
// CHECK:        arith.addf
// CHECK:        arith.constant 1.250000e-01 : f32
// CHECK:        arith.constant 1.000000e-06 : f32
// CHECK:        math.rsqrt
// CHECK:      affine_map<(d0, d1) -> (d0, 0)>
// CHECK:      ins(%p_weight, %{{.*}} : tensor<8xf32>, tensor<2x8xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT:   arith.mulf
