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
// aten.silu (left undecomposed) is one generic: x * sigmoid(x), sigmoid = 1 / (1 + exp(-x)).

// CHECK:      linalg.generic {{.*}} ins(%x : tensor<2x8xf32>)
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %{{.*}}: f32):
// CHECK:        arith.negf %[[X]]
// CHECK-NEXT:   math.exp
// CHECK-NEXT:   arith.addf
// CHECK-NEXT:   %[[SIG:.*]] = arith.divf
// CHECK-NEXT:   %[[Y:.*]] = arith.mulf %[[X]], %[[SIG]]
// CHECK-NEXT:   linalg.yield %[[Y]]
