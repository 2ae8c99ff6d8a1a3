// RUN: streamdsl-opt %s -p 'allocate-hbm-channels{channels=4}' | filecheck %s
// RUN: streamdsl-opt %s -p 'allocate-hbm-channels{striping=false}' | filecheck %s --check-prefix=ONE
// RUN: not streamdsl-opt %s -p 'allocate-hbm-channels{channels=33}' 2>&1 | filecheck %s --check-prefix=BAD

// Bytes: w 32 KiB each way, x 256 B each way. The w load's bandwidth share (32,768 of 66,048
// bytes x 4 channels, rounded) is 2 stripes, and a 32x32 f32 tile is whole 1,024-bit beats of two
// words, so it can read 2; x keeps one; stores keep one. Largest stripe first, each where it
// finishes first under round robin, ties on the least-loaded channel: the w store (32 KiB) on 0,
// the w load's stripes (16 KiB each) on 1 and 2, the x load on 3 (empty), and the x store waits
// for 256 B on every channel, so beside it on 3 (the least loaded): each gets half of channel 3.

// CHECK:      dataflow.dma_load %{{.*}} {hbm_channels = array<i64: 3>, hbm_share = 5.000000e-01 : f64}
// CHECK-NEXT: dataflow.dma_load %{{.*}} {hbm_channels = array<i64: 1, 2>, hbm_share = 1.000000e+00 : f64}
// CHECK-NEXT: dataflow.dma_store %{{.*}} {hbm_channels = array<i64: 3>, hbm_share = 5.000000e-01 : f64}
// CHECK-NEXT: dataflow.dma_store %{{.*}} {hbm_channels = array<i64: 0>, hbm_share = 1.000000e+00 : f64}

// Without striping, on 32 channels, every DMA has a channel of its own.
// ONE:      dataflow.dma_load %{{.*}} {hbm_channels = array<i64: 2>, hbm_share = 1.000000e+00 : f64}
// ONE-NEXT: dataflow.dma_load %{{.*}} {hbm_channels = array<i64: 0>, hbm_share = 1.000000e+00 : f64}
// ONE-NEXT: dataflow.dma_store %{{.*}} {hbm_channels = array<i64: 3>, hbm_share = 1.000000e+00 : f64}
// ONE-NEXT: dataflow.dma_store %{{.*}} {hbm_channels = array<i64: 1>, hbm_share = 1.000000e+00 : f64}

// BAD: allocate-hbm-channels: channels=33; the U55C has 1 to 32

builtin.module {
  func.func @copy(%x: tensor<1x64xf32>, %w: tensor<64x128xf32>) -> (tensor<1x64xf32>, tensor<64x128xf32>) {
    %0, %1 = dataflow.kernel "copy"(%x, %w) : (tensor<1x64xf32>, tensor<64x128xf32>) -> (tensor<1x64xf32>, tensor<64x128xf32>) {
    ^bb0(%x_1: tensor<1x64xf32>, %w_1: tensor<64x128xf32>):
      %2 = dataflow.dma_load %x_1 : tensor<1x64xf32> -> !dataflow.itensor<1x32xf32, [2] * [32], (d0) -> (0, d0)>
      %3 = dataflow.dma_load %w_1 : tensor<64x128xf32> -> !dataflow.itensor<32x32xf32, [2, 4] * [32, 32], (d0, d1) -> (d0, d1)>
      %4 = dataflow.dma_store %2 : !dataflow.itensor<1x32xf32, [2] * [32], (d0) -> (0, d0)> -> tensor<1x64xf32>
      %5 = dataflow.dma_store %3 : !dataflow.itensor<32x32xf32, [2, 4] * [32, 32], (d0, d1) -> (d0, d1)> -> tensor<64x128xf32>
      dataflow.yield %4, %5 : tensor<1x64xf32>, tensor<64x128xf32>
    }
    func.return %0, %1 : tensor<1x64xf32>, tensor<64x128xf32>
  }
}
