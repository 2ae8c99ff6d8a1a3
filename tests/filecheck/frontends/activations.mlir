// RUN: %python -m frontends.dump gelu silu | filecheck %s
// RUN: %python -m frontends.dump gelu_erf | filecheck %s --check-prefix=ERF

// CHECK-LABEL: // case: gelu
// aten.gelu: the tanh approximation (GPT-2, Gemma) and the erf form, each one generic.

// CHECK:      linalg.generic
// CHECK:        arith.constant 4.471500e-02 : f32
// CHECK:        arith.constant 0.797884583 : f32
// CHECK:        math.tanh
// CHECK:        arith.constant 5.000000e-01 : f32
// CHECK:        linalg.yield

// ERF:        linalg.generic
// ERF:          arith.constant 0.707106769 : f32
// ERF-NEXT:     arith.mulf
// ERF-NEXT:     math.erf
// ERF:          linalg.yield

// CHECK-LABEL: // case: silu
// SiLU decomposes to x * sigmoid(x); sigmoid is 1 / (1 + exp(-x)).

// CHECK:      %[[SIG:.*]] = linalg.generic {{.*}} ins(%x : tensor<2x8xf32>)
// CHECK:        arith.negf
// CHECK-NEXT:   math.exp
// CHECK-NEXT:   arith.addf
// CHECK-NEXT:   arith.divf
// CHECK:      linalg.generic {{.*}} ins(%x, %[[SIG]] : tensor<2x8xf32>, tensor<2x8xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT:   arith.mulf
