// RUN: streamdsl-opt %s -p 'share-hbm-ports{min_bytes=0}' | filecheck %s
// RUN: streamdsl-opt %s -p share-hbm-ports | filecheck %s --check-prefix=SMALL

// Two split parts (tasks named `<task>_p<p>`, as split-matvecs names them), each reading a weight
// of 1,024-bit beats (two stripes' worth) from HBM.
// @two: `sum_p0` adds the 2 rows of W1 (two 4,096-float tokens) and writes their sum; `add_p0`
// reads that sum (128 beats), then W2's one row. In the unbounded timed run W2's reader takes its
// first token more than a DMA latency (64 cycles) after W1's reader took its last, so the two
// loads share ports: one dma_sequence streams W1, then W2.
// CHECK-LABEL: func.func @two
// CHECK:       %[[L1:.*]], %[[L2:.*]] = dataflow.dma_sequence %a, %b {offsets = [array<i64>, array<i64>]} : tensor<2x4096xf32>, tensor<1x4096xf32> -> !dataflow.itensor<1x4096xf32, [2] * [1], (d0) -> (d0, 0)>, !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
// CHECK-NOT:   dataflow.dma_load
// CHECK:       dataflow.task "sum_p0" ins(%[[L1]] :
// CHECK:       dataflow.task "add_p0" ins(%{{.*}}, %[[L2]] :

// @side: `add_p1` reads W2's row before the sum, while `sum_p1` still reads W1: the loads'
// readers run side by side, so each keeps its own ports.
// CHECK-LABEL: func.func @side
// CHECK-NOT:   dataflow.dma_sequence
// CHECK:       dataflow.dma_load %{{.*}} : tensor<2x4096xf32>
// CHECK-NEXT:  dataflow.dma_load %{{.*}} : tensor<1x4096xf32>

// By default a load shares only when its buffer fills an m_axi buffer (512 words, 32 KiB): W1
// does, W2 (16 KiB) keeps its own port, so nothing is shared.
// SMALL-NOT: dataflow.dma_sequence

builtin.module {
  func.func @two(%w1: tensor<2x4096xf32>, %w2: tensor<1x4096xf32>) -> tensor<1x4096xf32> {
    %0 = dataflow.kernel "two"(%w1, %w2) : (tensor<2x4096xf32>, tensor<1x4096xf32>) -> tensor<1x4096xf32> {
    ^bb0(%a: tensor<2x4096xf32>, %b: tensor<1x4096xf32>):
      %l1 = dataflow.dma_load %a : tensor<2x4096xf32> -> !dataflow.itensor<1x4096xf32, [2] * [1], (d0) -> (d0, 0)>
      %l2 = dataflow.dma_load %b : tensor<1x4096xf32> -> !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
      %e1 = dataflow.itensor_empty : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
      %y = dataflow.task "sum_p0" ins(%l1 : !dataflow.itensor<1x4096xf32, [2] * [1], (d0) -> (d0, 0)>) outs(%e1 : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>) -> !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)> {
      ^bb0(%in: !dataflow.itensor<1x4096xf32, [2] * [1], (d0) -> (d0, 0)>, %out: !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>):
        %c0 = arith.constant 0 : index
        %c2 = arith.constant 2 : index
        %c1 = arith.constant 1 : index
        %z = arith.constant 0.000000e+00 : f32
        %t = tensor.empty() : tensor<1x4096xf32>
        %f = linalg.fill ins(%z : f32) outs(%t : tensor<1x4096xf32>) -> tensor<1x4096xf32>
        %acc = scf.for %i = %c0 to %c2 step %c1 iter_args(%s = %f) -> (tensor<1x4096xf32>) {
          %r = dataflow.itensor_read %in : !dataflow.itensor<1x4096xf32, [2] * [1], (d0) -> (d0, 0)> -> tensor<1x4096xf32>
          %g = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%r : tensor<1x4096xf32>) outs(%s : tensor<1x4096xf32>) {
          ^bb0(%p: f32, %q: f32):
            %v = arith.addf %p, %q : f32
            linalg.yield %v : f32
          } -> tensor<1x4096xf32>
          scf.yield %g : tensor<1x4096xf32>
        }
        %w = dataflow.itensor_write %acc, %out : tensor<1x4096xf32> -> !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
        dataflow.yield %w : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
      }
      %e2 = dataflow.itensor_empty : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
      %o = dataflow.task "add_p0" ins(%y, %l2 : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>, !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>) outs(%e2 : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>) -> !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)> {
      ^bb0(%u: !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>, %v2: !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>, %out2: !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>):
        %ru = dataflow.itensor_read %u : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)> -> tensor<1x4096xf32>
        %rv = dataflow.itensor_read %v2 : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)> -> tensor<1x4096xf32>
        %t2 = tensor.empty() : tensor<1x4096xf32>
        %g2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%ru, %rv : tensor<1x4096xf32>, tensor<1x4096xf32>) outs(%t2 : tensor<1x4096xf32>) {
        ^bb0(%p2: f32, %q2: f32, %o2: f32):
          %v3 = arith.addf %p2, %q2 : f32
          linalg.yield %v3 : f32
        } -> tensor<1x4096xf32>
        %wr2 = dataflow.itensor_write %g2, %out2 : tensor<1x4096xf32> -> !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
        dataflow.yield %wr2 : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
      }
      %s = dataflow.dma_store %o : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)> -> tensor<1x4096xf32>
      dataflow.yield %s : tensor<1x4096xf32>
    }
    func.return %0 : tensor<1x4096xf32>
  }
  func.func @side(%w1: tensor<2x4096xf32>, %w2: tensor<1x4096xf32>) -> tensor<1x4096xf32> {
    %0 = dataflow.kernel "side"(%w1, %w2) : (tensor<2x4096xf32>, tensor<1x4096xf32>) -> tensor<1x4096xf32> {
    ^bb0(%a: tensor<2x4096xf32>, %b: tensor<1x4096xf32>):
      %l1 = dataflow.dma_load %a : tensor<2x4096xf32> -> !dataflow.itensor<1x4096xf32, [2] * [1], (d0) -> (d0, 0)>
      %l2 = dataflow.dma_load %b : tensor<1x4096xf32> -> !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
      %e1 = dataflow.itensor_empty : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
      %y = dataflow.task "sum_p1" ins(%l1 : !dataflow.itensor<1x4096xf32, [2] * [1], (d0) -> (d0, 0)>) outs(%e1 : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>) -> !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)> {
      ^bb0(%in: !dataflow.itensor<1x4096xf32, [2] * [1], (d0) -> (d0, 0)>, %out: !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>):
        %c0 = arith.constant 0 : index
        %c2 = arith.constant 2 : index
        %c1 = arith.constant 1 : index
        %z = arith.constant 0.000000e+00 : f32
        %t = tensor.empty() : tensor<1x4096xf32>
        %f = linalg.fill ins(%z : f32) outs(%t : tensor<1x4096xf32>) -> tensor<1x4096xf32>
        %acc = scf.for %i = %c0 to %c2 step %c1 iter_args(%s = %f) -> (tensor<1x4096xf32>) {
          %r = dataflow.itensor_read %in : !dataflow.itensor<1x4096xf32, [2] * [1], (d0) -> (d0, 0)> -> tensor<1x4096xf32>
          %g = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%r : tensor<1x4096xf32>) outs(%s : tensor<1x4096xf32>) {
          ^bb0(%p: f32, %q: f32):
            %v = arith.addf %p, %q : f32
            linalg.yield %v : f32
          } -> tensor<1x4096xf32>
          scf.yield %g : tensor<1x4096xf32>
        }
        %w = dataflow.itensor_write %acc, %out : tensor<1x4096xf32> -> !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
        dataflow.yield %w : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
      }
      %e2 = dataflow.itensor_empty : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
      %o = dataflow.task "add_p1" ins(%y, %l2 : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>, !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>) outs(%e2 : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>) -> !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)> {
      ^bb0(%u: !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>, %v2: !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>, %out2: !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>):
        %rv = dataflow.itensor_read %v2 : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)> -> tensor<1x4096xf32>
        %ru = dataflow.itensor_read %u : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)> -> tensor<1x4096xf32>
        %t2 = tensor.empty() : tensor<1x4096xf32>
        %g2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%ru, %rv : tensor<1x4096xf32>, tensor<1x4096xf32>) outs(%t2 : tensor<1x4096xf32>) {
        ^bb0(%p2: f32, %q2: f32, %o2: f32):
          %v3 = arith.addf %p2, %q2 : f32
          linalg.yield %v3 : f32
        } -> tensor<1x4096xf32>
        %wr2 = dataflow.itensor_write %g2, %out2 : tensor<1x4096xf32> -> !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
        dataflow.yield %wr2 : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
      }
      %s = dataflow.dma_store %o : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)> -> tensor<1x4096xf32>
      dataflow.yield %s : tensor<1x4096xf32>
    }
    func.return %0 : tensor<1x4096xf32>
  }
}
