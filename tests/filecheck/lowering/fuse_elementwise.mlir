// RUN: streamdsl-opt %s -p fuse-elementwise | filecheck %s

// nn.Linear then GELU-like maps: the weight's transpose folds into the matmul's map (it reads
// %w as (d1, d2)), the bias broadcast becomes a generic that stays the accumulator (an init is
// not an input), and the two element-wise maps after the matmul fuse into one generic.

func.func @linear_act(%x: tensor<1x8xf32>, %w: tensor<16x8xf32>, %b: tensor<16xf32>) -> tensor<1x16xf32> {
  %e0 = tensor.empty() : tensor<8x16xf32>
  %wt = linalg.transpose ins(%w : tensor<16x8xf32>) outs(%e0 : tensor<8x16xf32>) permutation = [1, 0]
  %e1 = tensor.empty() : tensor<1x16xf32>
  %bb = linalg.broadcast ins(%b : tensor<16xf32>) outs(%e1 : tensor<1x16xf32>) dimensions = [0]
  %y = linalg.matmul ins(%x, %wt : tensor<1x8xf32>, tensor<8x16xf32>) outs(%bb : tensor<1x16xf32>) -> tensor<1x16xf32>
  %e2 = tensor.empty() : tensor<1x16xf32>
  %sq = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%y : tensor<1x16xf32>) outs(%e2 : tensor<1x16xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.mulf %a, %a : f32
    linalg.yield %m : f32
  } -> tensor<1x16xf32>
  %e3 = tensor.empty() : tensor<1x16xf32>
  %half = arith.constant 5.000000e-01 : f32
  %e4 = tensor.empty() : tensor<1x16xf32>
  %halves = linalg.fill ins(%half : f32) outs(%e4 : tensor<1x16xf32>) -> tensor<1x16xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%sq, %halves : tensor<1x16xf32>, tensor<1x16xf32>) outs(%e3 : tensor<1x16xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %m = arith.mulf %a, %c : f32
    linalg.yield %m : f32
  } -> tensor<1x16xf32>
  func.return %r : tensor<1x16xf32>
}

// CHECK-LABEL: func.func @linear_act
// CHECK-NOT:   linalg.transpose
// CHECK:       %[[B:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%b : tensor<16xf32>)
// CHECK:       %[[Y:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : tensor<1x8xf32>, tensor<16x8xf32>) outs(%[[B]] : tensor<1x16xf32>)
// CHECK:       %[[R:.*]] = linalg.generic {{.*}} ins(%[[Y]] : tensor<1x16xf32>)
// CHECK-NEXT:  ^bb0(%[[A:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT:    %[[C:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-NEXT:    %[[M:.*]] = arith.mulf %[[A]], %[[A]] : f32
// CHECK-NEXT:    %[[M2:.*]] = arith.mulf %[[M]], %[[C]] : f32
// CHECK-NEXT:    linalg.yield %[[M2]] : f32
// CHECK-NOT:   linalg.fill
// CHECK:       func.return %[[R]]
// CHECK-NOT:   linalg.generic

// Grouped-query attention's scores: each of 2 KV heads repeated for 2 query heads (a broadcast,
// then a collapse to 4 heads), transposed and read by the batched contraction. The collapses fold
// into the contraction by expanding its head loop into (KV head, repeat): the transpose and the
// broadcast then fuse into it, and it reads each KV head's keys once (a map without d2). The
// query is expanded to match, through reshapes (its producer, a rotary embedding in a model,
// stays out of the contraction), the accumulator is a new fill, and the result collapses back
// to the 4 heads that the expand after it undid.

func.func @gqa_scores(%q: tensor<1x4x1x16xf32>, %k: tensor<1x2x17x16xf32>) -> tensor<1x4x1x17xf32> {
  %e = tensor.empty() : tensor<1x2x2x17x16xf32>
  %b = linalg.broadcast ins(%k : tensor<1x2x17x16xf32>) outs(%e : tensor<1x2x2x17x16xf32>) dimensions = [2]
  %c = tensor.collapse_shape %b [[0], [1, 2], [3], [4]] : tensor<1x2x2x17x16xf32> into tensor<1x4x17x16xf32>
  %e2 = tensor.empty() : tensor<1x4x16x17xf32>
  %t = linalg.transpose ins(%c : tensor<1x4x17x16xf32>) outs(%e2 : tensor<1x4x16x17xf32>) permutation = [0, 1, 3, 2]
  %qc = tensor.collapse_shape %q [[0, 1], [2], [3]] : tensor<1x4x1x16xf32> into tensor<4x1x16xf32>
  %tc = tensor.collapse_shape %t [[0, 1], [2], [3]] : tensor<1x4x16x17xf32> into tensor<4x16x17xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %e3 = tensor.empty() : tensor<4x1x17xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e3 : tensor<4x1x17xf32>) -> tensor<4x1x17xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%qc, %tc : tensor<4x1x16xf32>, tensor<4x16x17xf32>) outs(%f : tensor<4x1x17xf32>) {
  ^bb0(%a: f32, %bb: f32, %acc: f32):
    %m = arith.mulf %a, %bb : f32
    %p = arith.addf %acc, %m : f32
    linalg.yield %p : f32
  } -> tensor<4x1x17xf32>
  %r = tensor.expand_shape %s [[0, 1], [2], [3]] output_shape [1, 4, 1, 17] : tensor<4x1x17xf32> into tensor<1x4x1x17xf32>
  func.return %r : tensor<1x4x1x17xf32>
}

// CHECK-LABEL: func.func @gqa_scores
// CHECK-NOT:   linalg.broadcast
// CHECK:       %[[QC:.*]] = tensor.collapse_shape %q
// CHECK:       %[[Q4:.*]] = tensor.expand_shape %[[QC]] {{\[\[}}0 : i64, 1 : i64], [2 : i64], [3 : i64]] output_shape [1, 4, 1, 16]
// CHECK:       %[[Q:.*]] = tensor.expand_shape %[[Q4]] {{\[\[}}0 : i64], [1 : i64, 2 : i64], [3 : i64], [4 : i64]] output_shape [1, 2, 2, 1, 16] : tensor<1x4x1x16xf32> into tensor<1x2x2x1x16xf32>
// CHECK:       %[[F:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<1x2x2x1x17xf32>)
// CHECK:       %[[S:.*]] = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d5)>, affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4, d5)>, affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[Q]], %k : tensor<1x2x2x1x16xf32>, tensor<1x2x17x16xf32>) outs(%[[F]] : tensor<1x2x2x1x17xf32>)
// CHECK:       %[[R:.*]] = tensor.collapse_shape %[[S]] {{\[\[}}0 : i64], [1 : i64, 2 : i64], [3 : i64], [4 : i64]] : tensor<1x2x2x1x17xf32> into tensor<1x4x1x17xf32>
// CHECK-NEXT:  func.return %[[R]]

// Multi-head attention's keys: a transpose behind a collapse, no broadcast. Nothing is repeated,
// so the collapse stays and so does the transpose (order-loops orders it for its reader).

func.func @mha_scores(%q: tensor<4x1x16xf32>, %k: tensor<1x4x17x16xf32>) -> tensor<4x1x17xf32> {
  %e2 = tensor.empty() : tensor<1x4x16x17xf32>
  %t = linalg.transpose ins(%k : tensor<1x4x17x16xf32>) outs(%e2 : tensor<1x4x16x17xf32>) permutation = [0, 1, 3, 2]
  %tc = tensor.collapse_shape %t [[0, 1], [2], [3]] : tensor<1x4x16x17xf32> into tensor<4x16x17xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %e3 = tensor.empty() : tensor<4x1x17xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e3 : tensor<4x1x17xf32>) -> tensor<4x1x17xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%q, %tc : tensor<4x1x16xf32>, tensor<4x16x17xf32>) outs(%f : tensor<4x1x17xf32>) {
  ^bb0(%a: f32, %bb: f32, %acc: f32):
    %m = arith.mulf %a, %bb : f32
    %p = arith.addf %acc, %m : f32
    linalg.yield %p : f32
  } -> tensor<4x1x17xf32>
  func.return %s : tensor<4x1x17xf32>
}

// CHECK-LABEL: func.func @mha_scores
// CHECK:       %[[T:.*]] = linalg.generic {{.*}} ins(%k : tensor<1x4x17x16xf32>)
// CHECK:       %[[TC:.*]] = tensor.collapse_shape %[[T]]
// CHECK:       linalg.generic {{.*}} ins(%q, %[[TC]] : tensor<4x1x16xf32>, tensor<4x16x17xf32>)

// Multi-head attention's values held in f16: the conversion to f32 behind the collapse folds the
// collapse into the contraction (its head loop expanded), and the conversion then fuses into it,
// so the contraction streams the f16 values and widens them in its body.

func.func @f16_values(%p: tensor<4x1x17xf32>, %v: tensor<1x4x17x16xf16>) -> tensor<4x1x16xf32> {
  %e = tensor.empty() : tensor<1x4x17x16xf32>
  %w = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v : tensor<1x4x17x16xf16>) outs(%e : tensor<1x4x17x16xf32>) {
  ^bb0(%x: f16, %o: f32):
    %y = arith.extf %x : f16 to f32
    linalg.yield %y : f32
  } -> tensor<1x4x17x16xf32>
  %wc = tensor.collapse_shape %w [[0, 1], [2], [3]] : tensor<1x4x17x16xf32> into tensor<4x17x16xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %e3 = tensor.empty() : tensor<4x1x16xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e3 : tensor<4x1x16xf32>) -> tensor<4x1x16xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%p, %wc : tensor<4x1x17xf32>, tensor<4x17x16xf32>) outs(%f : tensor<4x1x16xf32>) {
  ^bb0(%a: f32, %bb: f32, %acc: f32):
    %m = arith.mulf %a, %bb : f32
    %q = arith.addf %acc, %m : f32
    linalg.yield %q : f32
  } -> tensor<4x1x16xf32>
  func.return %s : tensor<4x1x16xf32>
}

// CHECK-LABEL: func.func @f16_values
// CHECK-NOT:   tensor.collapse_shape %{{.*}} : tensor<1x4x17x16xf32>
// CHECK:       %[[S:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %v : tensor<1x4x1x17xf32>, tensor<1x4x17x16xf16>)
// CHECK-NEXT:  ^{{.*}}(%{{.*}}: f32, %[[X:.*]]: f16, %{{.*}}: f32):
// CHECK-NEXT:    %[[W:.*]] = arith.extf %[[X]] : f16 to f32
// CHECK:       tensor.collapse_shape %[[S]]

// A collapse that undoes an expand (Hugging Face's repeat_kv around its broadcast) is the expand's
// source: the conversion before it then fuses into the broadcast's reader like any producer.

func.func @expand_collapse(%v: tensor<1x2x9x16xf16>) -> tensor<1x2x9x16xf32> {
  %e = tensor.empty() : tensor<1x2x9x16xf32>
  %w = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%v : tensor<1x2x9x16xf16>) outs(%e : tensor<1x2x9x16xf32>) {
  ^bb0(%x: f16, %o: f32):
    %y = arith.extf %x : f16 to f32
    linalg.yield %y : f32
  } -> tensor<1x2x9x16xf32>
  %x5 = tensor.expand_shape %w [[0], [1], [2, 3], [4]] output_shape [1, 2, 1, 9, 16] : tensor<1x2x9x16xf32> into tensor<1x2x1x9x16xf32>
  %c = tensor.collapse_shape %x5 [[0], [1], [2, 3], [4]] : tensor<1x2x1x9x16xf32> into tensor<1x2x9x16xf32>
  %e2 = tensor.empty() : tensor<1x2x9x16xf32>
  %n = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c : tensor<1x2x9x16xf32>) outs(%e2 : tensor<1x2x9x16xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.negf %a : f32
    linalg.yield %m : f32
  } -> tensor<1x2x9x16xf32>
  func.return %n : tensor<1x2x9x16xf32>
}

// CHECK-LABEL: func.func @expand_collapse
// CHECK-NOT:   tensor.expand_shape
// CHECK-NOT:   tensor.collapse_shape
// CHECK:       linalg.generic {{.*}} ins(%v : tensor<1x2x9x16xf16>)
// CHECK-NEXT:  ^{{.*}}(%[[X:.*]]: f16, %{{.*}}: f32):
// CHECK-NEXT:    %[[W:.*]] = arith.extf %[[X]] : f16 to f32
// CHECK-NEXT:    %{{.*}} = arith.negf %[[W]] : f32
// CHECK-NOT:   linalg.generic

// The same pair over an f32 value with no conversion to fold: it stays (cancelling it would
// change how a grouped-query block's f32 cache is tiled, for nothing to fuse).

func.func @expand_collapse_kept(%v: tensor<1x2x9x16xf32>) -> tensor<1x2x9x16xf32> {
  %x5 = tensor.expand_shape %v [[0], [1], [2, 3], [4]] output_shape [1, 2, 1, 9, 16] : tensor<1x2x9x16xf32> into tensor<1x2x1x9x16xf32>
  %c = tensor.collapse_shape %x5 [[0], [1], [2, 3], [4]] : tensor<1x2x1x9x16xf32> into tensor<1x2x9x16xf32>
  %e2 = tensor.empty() : tensor<1x2x9x16xf32>
  %n = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c : tensor<1x2x9x16xf32>) outs(%e2 : tensor<1x2x9x16xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.negf %a : f32
    linalg.yield %m : f32
  } -> tensor<1x2x9x16xf32>
  func.return %n : tensor<1x2x9x16xf32>
}

// CHECK-LABEL: func.func @expand_collapse_kept
// CHECK:       tensor.expand_shape %v
// CHECK:       tensor.collapse_shape
