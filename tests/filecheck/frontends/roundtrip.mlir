// RUN: %python -m frontends.dump layer_norm > %t.mlir && streamdsl-opt %t.mlir | filecheck %s
// RUN: streamdsl-opt %t.mlir --print-op-generic | streamdsl-opt | filecheck %s
// The imported IR parses back through streamdsl-opt, in custom and generic form.

// CHECK: func.func @forward(%input: tensor<2x8xf32> {torch.name = "input", torch.kind = "input"}
// CHECK: math.rsqrt
// CHECK: func.return
