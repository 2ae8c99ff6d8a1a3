// RUN: streamdsl-opt %s -p narrow-streams | filecheck %s

// Two chains to two outputs. `sum` adds four 1x64 tiles (two beats each) per output tile, so its
// two tokens to `copy_sum` come 23 cycles apart in the unbounded timed run: beats of 8 floats
// (8 beats a token, half that gap) carry them as fast, and `copy_sum` is not on the critical path,
// which runs through `slow` (II 100): the stream is narrowed to 256-bit beats in both tasks.
// `slow`'s tokens come 100 cycles apart, but narrowing its stream to `copy_slow` delays the
// critical path, so it is widened again.
// CHECK:      %s = dataflow.task "sum" ins(%{{.*}} : !dataflow.itensor<1x64xf32, [8] * [1], (d0) -> (d0, 0)>) outs(%{{.*}} : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0), beat 256>)
// CHECK:        dataflow.itensor_write %{{.*}}, %{{.*}} : tensor<1x64xf32> -> !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0), beat 256>
// CHECK:      dataflow.task "slow"
// CHECK-SAME: -> !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)> {
// CHECK:      dataflow.task "copy_sum" ins(%s : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0), beat 256>)
// CHECK:        dataflow.itensor_read %{{.*}} : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0), beat 256> -> tensor<1x64xf32>
// CHECK:      dataflow.task "copy_slow" ins(%m : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>)

builtin.module {
  func.func @two(%x: tensor<8x64xf32>, %y: tensor<2x64xf32>) -> (tensor<2x64xf32>, tensor<2x64xf32>) {
    %0, %1 = dataflow.kernel "two"(%x, %y) : (tensor<8x64xf32>, tensor<2x64xf32>) -> (tensor<2x64xf32>, tensor<2x64xf32>) {
    ^bb0(%a: tensor<8x64xf32>, %b: tensor<2x64xf32>):
      %l = dataflow.dma_load %a : tensor<8x64xf32> -> !dataflow.itensor<1x64xf32, [8] * [1], (d0) -> (d0, 0)>
      %e1 = dataflow.itensor_empty : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
      %s = dataflow.task "sum" ins(%l : !dataflow.itensor<1x64xf32, [8] * [1], (d0) -> (d0, 0)>) outs(%e1 : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>) -> !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)> {
      ^bb0(%in: !dataflow.itensor<1x64xf32, [8] * [1], (d0) -> (d0, 0)>, %out: !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>):
        %c0 = arith.constant 0 : index
        %c1 = arith.constant 1 : index
        %c2 = arith.constant 2 : index
        %c4 = arith.constant 4 : index
        %z = arith.constant 0.000000e+00 : f32
        %w = scf.for %i = %c0 to %c2 step %c1 iter_args(%o = %out) -> (!dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>) {
          %t = tensor.empty() : tensor<1x64xf32>
          %f = linalg.fill ins(%z : f32) outs(%t : tensor<1x64xf32>) -> tensor<1x64xf32>
          %acc = scf.for %j = %c0 to %c4 step %c1 iter_args(%q = %f) -> (tensor<1x64xf32>) {
            %r = dataflow.itensor_read %in : !dataflow.itensor<1x64xf32, [8] * [1], (d0) -> (d0, 0)> -> tensor<1x64xf32>
            %g = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%r : tensor<1x64xf32>) outs(%q : tensor<1x64xf32>) {
            ^bb0(%p: f32, %p2: f32):
              %v = arith.addf %p, %p2 : f32
              linalg.yield %v : f32
            } -> tensor<1x64xf32>
            scf.yield %g : tensor<1x64xf32>
          }
          %o2 = dataflow.itensor_write %acc, %o : tensor<1x64xf32> -> !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
          scf.yield %o2 : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
        }
        dataflow.yield %w : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
      }
      %lb = dataflow.dma_load %b : tensor<2x64xf32> -> !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
      %e3 = dataflow.itensor_empty : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
      %m = dataflow.task "slow" ins(%lb : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>) outs(%e3 : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>) attributes {ii = 100 : i64} -> !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)> {
      ^bb0(%sl: !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>, %sl_out: !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>):
        %c0 = arith.constant 0 : index
        %c1 = arith.constant 1 : index
        %c2 = arith.constant 2 : index
        %w = scf.for %i = %c0 to %c2 step %c1 iter_args(%o = %sl_out) -> (!dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>) {
          %r = dataflow.itensor_read %sl : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)> -> tensor<1x64xf32>
          %o2 = dataflow.itensor_write %r, %o : tensor<1x64xf32> -> !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
          scf.yield %o2 : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
        }
        dataflow.yield %w : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
      }
      %e2 = dataflow.itensor_empty : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
      %h = dataflow.task "copy_sum" ins(%s : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>) outs(%e2 : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>) -> !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)> {
      ^bb0(%cs: !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>, %cs_out: !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>):
        %c0 = arith.constant 0 : index
        %c1 = arith.constant 1 : index
        %c2 = arith.constant 2 : index
        %w = scf.for %i = %c0 to %c2 step %c1 iter_args(%o = %cs_out) -> (!dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>) {
          %r = dataflow.itensor_read %cs : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)> -> tensor<1x64xf32>
          %o2 = dataflow.itensor_write %r, %o : tensor<1x64xf32> -> !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
          scf.yield %o2 : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
        }
        dataflow.yield %w : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
      }
      %e4 = dataflow.itensor_empty : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
      %n = dataflow.task "copy_slow" ins(%m : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>) outs(%e4 : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>) -> !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)> {
      ^bb0(%cm: !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>, %cm_out: !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>):
        %c0 = arith.constant 0 : index
        %c1 = arith.constant 1 : index
        %c2 = arith.constant 2 : index
        %w = scf.for %i = %c0 to %c2 step %c1 iter_args(%o = %cm_out) -> (!dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>) {
          %r = dataflow.itensor_read %cm : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)> -> tensor<1x64xf32>
          %o2 = dataflow.itensor_write %r, %o : tensor<1x64xf32> -> !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
          scf.yield %o2 : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
        }
        dataflow.yield %w : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)>
      }
      %st = dataflow.dma_store %h : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)> -> tensor<2x64xf32>
      %sn = dataflow.dma_store %n : !dataflow.itensor<1x64xf32, [2] * [1], (d0) -> (d0, 0)> -> tensor<2x64xf32>
      dataflow.yield %st, %sn : tensor<2x64xf32>, tensor<2x64xf32>
    }
    func.return %0, %1 : tensor<2x64xf32>, tensor<2x64xf32>
  }
}
