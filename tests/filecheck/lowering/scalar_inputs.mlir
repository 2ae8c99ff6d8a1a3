// RUN: streamdsl-opt %s -p 'integer-tensors,fuse-elementwise,tile-linalg{default-tile=4},form-kernels' | filecheck %s
// RUN: streamdsl-opt %s -p 'integer-tensors' | filecheck %s --check-prefix=INT

// A decoder block's mask: the key-slot iota (i64) and a boolean (i1) folded into constant
// arguments, compared with the run-time cache length (a rank-0 i32 argument with its maximum).
// integer-tensors passes the i1/i64 tensors as i32 and converts them back in the body; the
// i64 difference used twice is recomputed in both consumers (no stream carries i64); the cache
// length becomes a kernel scalar, passed to the task after its streams and read as a splat tile.

func.func @mask(%slot: tensor<8xi64>, %is_new: tensor<8xi1>, %n: tensor<i32> {torch.name = "cache_len", scalar_max = 8 : i64}, %s: tensor<1x8xf32>) -> tensor<1x8xf32> {
  %e0 = tensor.empty() : tensor<1x8xi64>
  %back = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> ()>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%slot, %n : tensor<8xi64>, tensor<i32>) outs(%e0 : tensor<1x8xi64>) {
  ^bb0(%a: i64, %b: i32, %o: i64):
    %w = arith.extsi %b : i32 to i64
    %d = arith.subi %w, %a : i64
    linalg.yield %d : i64
  } -> tensor<1x8xi64>
  %e1 = tensor.empty() : tensor<1x8xi1>
  %seen = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%back, %is_new : tensor<1x8xi64>, tensor<8xi1>) outs(%e1 : tensor<1x8xi1>) {
  ^bb0(%a: i64, %new: i1, %o: i1):
    %z = arith.constant 0 : i64
    %c = arith.cmpi sgt, %a, %z : i64
    %r = arith.ori %c, %new : i1
    linalg.yield %r : i1
  } -> tensor<1x8xi1>
  %e2 = tensor.empty() : tensor<1x8xi1>
  %near = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%back : tensor<1x8xi64>) outs(%e2 : tensor<1x8xi1>) {
  ^bb0(%a: i64, %o: i1):
    %four = arith.constant 4 : i64
    %c = arith.cmpi slt, %a, %four : i64
    linalg.yield %c : i1
  } -> tensor<1x8xi1>
  %e3 = tensor.empty() : tensor<1x8xf32>
  %out = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%seen, %near, %s : tensor<1x8xi1>, tensor<1x8xi1>, tensor<1x8xf32>) outs(%e3 : tensor<1x8xf32>) {
  ^bb0(%a: i1, %b: i1, %x: f32, %o: f32):
    %both = arith.andi %a, %b : i1
    %min = arith.constant -3.40282347e+38 : f32
    %r = arith.select %both, %x, %min : f32
    linalg.yield %r : f32
  } -> tensor<1x8xf32>
  func.return %out : tensor<1x8xf32>
}

// INT-LABEL: func.func @mask(%slot: tensor<8xi32>, %is_new: tensor<8xi32>, %n: tensor<i32>
// INT:         ^{{.*}}(%[[A:.*]]: i32, %{{.*}}: i32, %{{.*}}: i64):
// INT-NEXT:      %[[SLOT:.*]] = arith.extsi %[[A]] : i32 to i64
// INT:         ^{{.*}}(%{{.*}}: i64, %[[B:.*]]: i32, %{{.*}}: i1):
// INT-NEXT:      %{{.*}} = arith.trunci %[[B]] : i32 to i1

// CHECK-LABEL: func.func @mask(%slot: tensor<8xi32>, %is_new: tensor<8xi32>, %n: i32
// CHECK-NEXT:    %out = dataflow.kernel "k0_map"(%slot, %is_new, %s, %n) attributes {scalars = ["cache_len"], scalar_max = array<i64: 8>}
// CHECK:         dataflow.task "k0_map" ins({{.*}} : !dataflow.itensor<4xi32, {{.*}}, !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>, i32)
// CHECK-NEXT:    ^{{.*}}, %[[N:.*]]: i32, %{{.*}}: !dataflow.itensor<1x4xf32, [2] * [4], (d0) -> (0, d0)>):
// CHECK:           tensor.splat %[[N]] : tensor<1xi32>
// CHECK:           linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (0)>,
// CHECK-COUNT-2:     arith.subi
// CHECK-NOT:     dataflow.kernel
