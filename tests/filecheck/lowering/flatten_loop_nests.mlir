// RUN: streamdsl-opt %s -p 'flatten-loop-nests' | filecheck %s
// RUN: streamdsl-opt %s -p 'flatten-loop-nests{chains=true}' | filecheck %s

// Three tasks walking 2 heads x 3 key tiles (no weight chain here: `chains` changes nothing).
// "scores" reads, scales and writes one tile an iteration with nothing between its loops, its
// outer loop over heads 1 and 2 (as a split part's runs over its share of the trips): one loop of
// 6 iterations from 0. "sum" sets an accumulator
// before its inner loop and writes after it (imperfect: kept). "indexed" uses its inner
// induction variable: kept.

// CHECK:      dataflow.task "scores"
// CHECK-DAG:    %[[Z:.*]] = arith.constant 0 : index
// CHECK-DAG:    %[[N:.*]] = arith.constant 6 : index
// CHECK:        scf.for %{{.*}} = %[[Z]] to %[[N]] step %{{.*}} iter_args
// CHECK-NOT:    scf.for
// CHECK:          dataflow.itensor_read
// CHECK-NEXT:     linalg.add
// CHECK-NEXT:     dataflow.itensor_write
// CHECK:      dataflow.task "sum"
// CHECK:        scf.for
// CHECK:          scf.for
// CHECK:      dataflow.task "indexed"
// CHECK:        scf.for
// CHECK:          scf.for

!k = !dataflow.itensor<1x2xf32, [2, 3] * [1, 2], (d0, d1) -> (d0, d1)>
!h = !dataflow.itensor<1x2xf32, [2] * [1], (d0) -> (d0, 0)>
func.func @heads(%x: tensor<2x6xf32>) -> (tensor<2x6xf32>, tensor<2x2xf32>, tensor<2x6xf32>) {
  %y, %z, %w = dataflow.kernel "heads"(%x) : (tensor<2x6xf32>) -> (tensor<2x6xf32>, tensor<2x2xf32>, tensor<2x6xf32>) {
  ^bb0(%xa: tensor<2x6xf32>):
    %xs = dataflow.dma_load %xa : tensor<2x6xf32> -> !k
    %xt = dataflow.dma_load %xa : tensor<2x6xf32> -> !k
    %xu = dataflow.dma_load %xa : tensor<2x6xf32> -> !k
    %e = dataflow.itensor_empty : !k
    %s = dataflow.task "scores" ins(%xs : !k) outs(%e : !k) -> !k {
    ^bb0(%in: !k, %o: !k):
      %c1 = arith.constant 1 : index
      %c3 = arith.constant 3 : index
      %r = scf.for %h = %c1 to %c3 step %c1 iter_args(%acc = %o) -> (!k) {
        %d0 = arith.constant 0 : index
        %d6 = arith.constant 6 : index
        %d2 = arith.constant 2 : index
        %q = scf.for %t = %d0 to %d6 step %d2 iter_args(%out = %acc) -> (!k) {
          %tile = dataflow.itensor_read %in : !k -> tensor<1x2xf32>
          %twice = linalg.add ins(%tile, %tile : tensor<1x2xf32>, tensor<1x2xf32>) outs(%tile : tensor<1x2xf32>) -> tensor<1x2xf32>
          %w1 = dataflow.itensor_write %twice, %out : tensor<1x2xf32> -> !k
          scf.yield %w1 : !k
        }
        scf.yield %q : !k
      }
      dataflow.yield %r : !k
    }
    %eh = dataflow.itensor_empty : !h
    %m = dataflow.task "sum" ins(%xt : !k) outs(%eh : !h) -> !h {
    ^bb0(%in: !k, %o: !h):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      %c3 = arith.constant 3 : index
      %r = scf.for %h = %c0 to %c2 step %c1 iter_args(%acc = %o) -> (!h) {
        %zero = arith.constant 0.0 : f32
        %ze = tensor.empty() : tensor<1x2xf32>
        %z0 = linalg.fill ins(%zero : f32) outs(%ze : tensor<1x2xf32>) -> tensor<1x2xf32>
        %sum = scf.for %t = %c0 to %c3 step %c1 iter_args(%part = %z0) -> (tensor<1x2xf32>) {
          %tile = dataflow.itensor_read %in : !k -> tensor<1x2xf32>
          %n = linalg.add ins(%tile, %part : tensor<1x2xf32>, tensor<1x2xf32>) outs(%part : tensor<1x2xf32>) -> tensor<1x2xf32>
          scf.yield %n : tensor<1x2xf32>
        }
        %w2 = dataflow.itensor_write %sum, %acc : tensor<1x2xf32> -> !h
        scf.yield %w2 : !h
      }
      dataflow.yield %r : !h
    }
    %ei = dataflow.itensor_empty : !k
    %i = dataflow.task "indexed" ins(%xu : !k) outs(%ei : !k) -> !k {
    ^bb0(%in: !k, %o: !k):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      %c3 = arith.constant 3 : index
      %r = scf.for %h = %c0 to %c2 step %c1 iter_args(%acc = %o) -> (!k) {
        %q = scf.for %t = %c0 to %c3 step %c1 iter_args(%out = %acc) -> (!k) {
          %tile = dataflow.itensor_read %in : !k -> tensor<1x2xf32>
          %ti = arith.index_cast %t : index to i32
          %tf = arith.sitofp %ti : i32 to f32
          %shifted = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%tile : tensor<1x2xf32>) outs(%tile : tensor<1x2xf32>) {
          ^bb1(%a: f32, %b: f32):
            %v = arith.addf %a, %tf : f32
            linalg.yield %v : f32
          } -> tensor<1x2xf32>
          %w3 = dataflow.itensor_write %shifted, %out : tensor<1x2xf32> -> !k
          scf.yield %w3 : !k
        }
        scf.yield %q : !k
      }
      dataflow.yield %r : !k
    }
    %ys = dataflow.dma_store %s : !k -> tensor<2x6xf32>
    %zs = dataflow.dma_store %m : !h -> tensor<2x2xf32>
    %ws = dataflow.dma_store %i : !k -> tensor<2x6xf32>
    dataflow.yield %ys, %zs, %ws : tensor<2x6xf32>, tensor<2x2xf32>, tensor<2x6xf32>
  }
  func.return %y, %z, %w : tensor<2x6xf32>, tensor<2x2xf32>, tensor<2x6xf32>
}
