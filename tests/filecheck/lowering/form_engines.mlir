// RUN: streamdsl-opt %s -p 'form-engines{groups="first,second"}' | filecheck %s
// RUN: streamdsl-opt %s -p 'form-engines{groups="first,second"}' | streamdsl-opt | filecheck %s
// RUN: not streamdsl-opt %s -p 'form-engines{groups="first,mid"}' 2>&1 | filecheck %s --check-prefix=UNLIKE

// Two split parts that run one after the other, one body up to their trip counts and streams:
// `first_p0` multiplies-accumulates X by W1 over two tiles, `mid` doubles its output, and
// `second_p0` does the same with that and W2 over one tile. The engine `first_engine_p0` runs both
// loops in turn where `first_p0` was: W2's load and `second_p0`'s destination are brought above
// it, and `mid`'s output, defined below it, comes back through a feedback stream connected at the
// end: the cycle engine -> mid -> engine.
// CHECK:       %x1 = dataflow.dma_load %x
// CHECK-NEXT:  %l1 = dataflow.dma_load %a
// CHECK-NEXT:  %e1 = dataflow.itensor_empty
// CHECK-NEXT:  %m_fb = dataflow.itensor_feedback : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
// CHECK-NEXT:  %l2 = dataflow.dma_load %b
// CHECK-NEXT:  %e3 = dataflow.itensor_empty
// CHECK-NEXT:  %y, %o = dataflow.task "first_engine_p0" ins(%x1, %l1, %m_fb, %l2 : {{.*}}) outs(%e1, %e3 : {{.*}}) attributes {engine = ["first_p0", "second_p0"]}
// CHECK:         scf.for
// CHECK:           dataflow.itensor_read %in
// CHECK:         scf.for
// CHECK:           %ru = dataflow.itensor_read %u
// CHECK-NEXT:      %rv = dataflow.itensor_read %v2
// CHECK:         dataflow.yield %w, %wr2
// CHECK:       %m = dataflow.task "mid_p0" ins(%y : {{.*}})
// CHECK:       %s = dataflow.dma_store %o
// CHECK-NEXT:  dataflow.itensor_feedback_connect %m to %m_fb : !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
// CHECK-NEXT:  dataflow.yield %s
// CHECK-NOT:   "first_p0"
// CHECK-NOT:   "second_p0"

// `first_p0` and `mid_p0` are not one body: merged, they would cost what they cost apart.
// UNLIKE: form-engines: first_p0, mid_p0 are not one body up to integer constants and streams

!S = !dataflow.itensor<1x4096xf32, [1] * [1], (d0) -> (d0, 0)>
!W = !dataflow.itensor<1x4096xf32, [2] * [1], (d0) -> (d0, 0)>

builtin.module {
  func.func @two(%x: tensor<2x4096xf32>, %w1: tensor<2x4096xf32>, %w2: tensor<1x4096xf32>) -> tensor<1x4096xf32> {
    %0 = dataflow.kernel "two"(%x, %w1, %w2) : (tensor<2x4096xf32>, tensor<2x4096xf32>, tensor<1x4096xf32>) -> tensor<1x4096xf32> {
    ^bb0(%xa: tensor<2x4096xf32>, %a: tensor<2x4096xf32>, %b: tensor<1x4096xf32>):
      %x1 = dataflow.dma_load %xa : tensor<2x4096xf32> -> !W
      %l1 = dataflow.dma_load %a : tensor<2x4096xf32> -> !W
      %e1 = dataflow.itensor_empty : !S
      %y = dataflow.task "first_p0" ins(%x1, %l1 : !W, !W) outs(%e1 : !S) -> !S {
      ^bb0(%in: !W, %v1: !W, %out: !S):
        %c0 = arith.constant 0 : index
        %c2 = arith.constant 2 : index
        %c1 = arith.constant 1 : index
        %z = arith.constant 0.000000e+00 : f32
        %t = tensor.empty() : tensor<1x4096xf32>
        %f = linalg.fill ins(%z : f32) outs(%t : tensor<1x4096xf32>) -> tensor<1x4096xf32>
        %acc = scf.for %i = %c0 to %c2 step %c1 iter_args(%s = %f) -> (tensor<1x4096xf32>) {
          %r = dataflow.itensor_read %in : !W -> tensor<1x4096xf32>
          %q = dataflow.itensor_read %v1 : !W -> tensor<1x4096xf32>
          %p = linalg.mul ins(%r, %q : tensor<1x4096xf32>, tensor<1x4096xf32>) outs(%t : tensor<1x4096xf32>) -> tensor<1x4096xf32>
          %g = linalg.add ins(%p, %s : tensor<1x4096xf32>, tensor<1x4096xf32>) outs(%s : tensor<1x4096xf32>) -> tensor<1x4096xf32>
          scf.yield %g : tensor<1x4096xf32>
        }
        %w = dataflow.itensor_write %acc, %out : tensor<1x4096xf32> -> !S
        dataflow.yield %w : !S
      }
      %e2 = dataflow.itensor_empty : !S
      %m = dataflow.task "mid_p0" ins(%y : !S) outs(%e2 : !S) -> !S {
      ^bb0(%xm: !S, %mo: !S):
        %rx = dataflow.itensor_read %xm : !S -> tensor<1x4096xf32>
        %t3 = tensor.empty() : tensor<1x4096xf32>
        %d = linalg.add ins(%rx, %rx : tensor<1x4096xf32>, tensor<1x4096xf32>) outs(%t3 : tensor<1x4096xf32>) -> tensor<1x4096xf32>
        %wm = dataflow.itensor_write %d, %mo : tensor<1x4096xf32> -> !S
        dataflow.yield %wm : !S
      }
      %l2 = dataflow.dma_load %b : tensor<1x4096xf32> -> !S
      %e3 = dataflow.itensor_empty : !S
      %o = dataflow.task "second_p0" ins(%m, %l2 : !S, !S) outs(%e3 : !S) -> !S {
      ^bb0(%u: !S, %v2: !S, %out2: !S):
        %c0b = arith.constant 0 : index
        %c1b = arith.constant 1 : index
        %c1c = arith.constant 1 : index
        %zb = arith.constant 0.000000e+00 : f32
        %t2 = tensor.empty() : tensor<1x4096xf32>
        %f2 = linalg.fill ins(%zb : f32) outs(%t2 : tensor<1x4096xf32>) -> tensor<1x4096xf32>
        %acc2 = scf.for %j = %c0b to %c1b step %c1c iter_args(%s2 = %f2) -> (tensor<1x4096xf32>) {
          %ru = dataflow.itensor_read %u : !S -> tensor<1x4096xf32>
          %rv = dataflow.itensor_read %v2 : !S -> tensor<1x4096xf32>
          %p2 = linalg.mul ins(%ru, %rv : tensor<1x4096xf32>, tensor<1x4096xf32>) outs(%t2 : tensor<1x4096xf32>) -> tensor<1x4096xf32>
          %g2 = linalg.add ins(%p2, %s2 : tensor<1x4096xf32>, tensor<1x4096xf32>) outs(%s2 : tensor<1x4096xf32>) -> tensor<1x4096xf32>
          scf.yield %g2 : tensor<1x4096xf32>
        }
        %wr2 = dataflow.itensor_write %acc2, %out2 : tensor<1x4096xf32> -> !S
        dataflow.yield %wr2 : !S
      }
      %s = dataflow.dma_store %o : !S -> tensor<1x4096xf32>
      dataflow.yield %s : tensor<1x4096xf32>
    }
    func.return %0 : tensor<1x4096xf32>
  }
}
