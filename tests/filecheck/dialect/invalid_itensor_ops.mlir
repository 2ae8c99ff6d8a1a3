// Every itensor-level op verifier rule: the message names the op and the rule.
// Each case's diagnostic must be the first line printed for its chunk.
// RUN: streamdsl-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics --allow-unregistered-dialect | filecheck %s

// itensor_read: result != tile type
// CHECK:      {{^}}dataflow.itensor_read: result type tensor<2x4xf32> must be the tile type tensor<4x2xf32> of the source itensor
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%t = dataflow.itensor_read %e : !T -> tensor<2x4xf32>

// -----
// itensor_read: source is not an itensor (IRDL constraint, named)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_read: operand 'source' at position 0 does not verify:
%s = "test.op"() : () -> tensor<8x8xf32>
%t = "dataflow.itensor_read"(%s) : (tensor<8x8xf32>) -> tensor<4x2xf32>

// -----
// itensor_write: value != tile type
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_write: value type tensor<4x2xf16> must be the tile type tensor<4x2xf32> of the destination itensor
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%t = "test.op"() : () -> tensor<4x2xf16>
%w = dataflow.itensor_write %t, %e : tensor<4x2xf16> -> !T

// -----
// itensor_write: result != destination type
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_write: result type !dataflow.itensor<4x2xf32, [2, 4] * [4, 2], (d0, d1) -> (d0, d1)> must equal the destination type !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!A = !dataflow.itensor<4x2xf32, [2, 4] * [4, 2], (d0, d1) -> (d0, d1)>
%e = dataflow.itensor_empty : !T
%t = dataflow.itensor_read %e : !T -> tensor<4x2xf32>
%w = "dataflow.itensor_write"(%t, %e) : (tensor<4x2xf32>, !T) -> !A

// -----
// itensor_empty: result is not an itensor
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_empty: result 'result' at position 0 does not verify:
%e = "dataflow.itensor_empty"() : () -> tensor<8x8xf32>

// -----
// itensor_fork: a result streams differently
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_fork: result type !dataflow.itensor<4x2xf32, [2, 4] * [4, 2], (d0, d1) -> (d0, d1)> must stream like the source type !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!A = !dataflow.itensor<4x2xf32, [2, 4] * [4, 2], (d0, d1) -> (d0, d1)>
%e = dataflow.itensor_empty : !T
%f:2 = dataflow.itensor_fork %e : !T -> !T, !A

// -----
// itensor_fork: one result
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_fork: needs at least two results, got 1
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%f = dataflow.itensor_fork %e : !T -> !T

// -----
// itensor_join: one source
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_join: needs at least two sources, got 1
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%j = dataflow.itensor_join %e : !T -> !T

// -----
// itensor_join: a source carries all of the result's tokens (each must carry 1/m of them)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_join: source 1 (!dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>) must carry 4 tokens of the result's tile type tensor<4x2xf32>, 1/2 of the result !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%h = dataflow.itensor_empty : !H
%e = dataflow.itensor_empty : !T
%j = dataflow.itensor_join %h, %e : !H, !T -> !T

// -----
// itensor_join: a source has another tile type
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_join: source 1 (!dataflow.itensor<2x4xf32, [2, 2] * [4, 2], (d0, d1) -> (d0, d1)>) must carry 4 tokens of the result's tile type tensor<4x2xf32>, 1/2 of the result !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!W = !dataflow.itensor<2x4xf32, [2, 2] * [4, 2], (d0, d1) -> (d0, d1)>
%h = dataflow.itensor_empty : !H
%w = dataflow.itensor_empty : !W
%j = dataflow.itensor_join %h, %w : !H, !W -> !T

// -----
// itensor_join: the result's tokens do not divide among the sources
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_join: the result's 8 tokens cannot be taken round robin from 3 sources
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%h = dataflow.itensor_empty : !H
%j = dataflow.itensor_join %h, %h, %h : !H, !H, !H -> !T

// -----
// itensor_cast: dtype changes
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_cast: source dtype f32 differs from result dtype f16
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%c = dataflow.itensor_cast %e : !T -> !dataflow.itensor<4x2xf16, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>

// -----
// itensor_cast: shape changes
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_cast: source shape [8, 8] differs from result shape [10, 6]
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%c = dataflow.itensor_cast %e : !T -> !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d0, d1)>

// -----
// itensor_reassociate: dtype changes
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_reassociate: source dtype f32 differs from result dtype i32
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%r = dataflow.itensor_reassociate %e : !T -> !dataflow.itensor<1x8xi32, [8] * [8], (d0) -> (0, d0)>

// -----
// itensor_reassociate: token size changes
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_reassociate: must keep tokens one to one: source has 8 tokens of 8 elements, result 4 of 16
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%r = dataflow.itensor_reassociate %e : !T -> !dataflow.itensor<1x16xf32, [4] * [16], (d0) -> (0, d0)>

// -----
// itensor_reassociate: token count changes
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_reassociate: must keep tokens one to one: source has 8 tokens of 8 elements, result 4 of 8
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%r = dataflow.itensor_reassociate %e : !T -> !dataflow.itensor<1x8xf32, [4] * [8], (d0) -> (0, d0)>

// -----
// itensor_chunk: dim out of range
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_chunk: dim 2 is out of range for rank 2
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%h:2 = dataflow.itensor_chunk %e {dim = 2 : i64} : !T -> !H, !H

// -----
// itensor_chunk: one part
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_chunk: needs at least two parts, got 1
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%h = dataflow.itensor_chunk %e {dim = 1 : i64} : !T -> !T

// -----
// itensor_chunk: sizes do not add up
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_chunk: parts add up to 12 along dim 1, the whole has 8
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%h:3 = dataflow.itensor_chunk %e {dim = 1 : i64} : !T -> !H, !H, !H

// -----
// itensor_chunk: a tile of the whole straddles two parts (routing is a verifier rule)
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_chunk: tile at [0, 2] straddles parts 0 and 1 along dim 1
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!P = !dataflow.itensor<4x1xf32, [2, 3] * [4, 1], (d0, d1) -> (d0, d1)>
!Q = !dataflow.itensor<4x1xf32, [2, 5] * [4, 1], (d0, d1) -> (d0, d1)>
%e = dataflow.itensor_empty : !T
%h:2 = dataflow.itensor_chunk %e {dim = 1 : i64} : !T -> !P, !Q

// -----
// itensor_chunk: a part streams its tiles in another order than the whole visits them
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_chunk: part 0 ({{.*}}) does not stream its tiles in the order of the whole ({{.*}}); insert a converter on that part
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!R = !dataflow.itensor<4x2xf32, [2, 2] * [4, 2], (d0, d1) -> (d0, d1)>
%e = dataflow.itensor_empty : !T
%h:2 = dataflow.itensor_chunk %e {dim = 1 : i64} : !T -> !R, !H

// -----
// itensor_chunk: part differs outside the dim
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_chunk: part shape [8, 4] must match [8, 8] outside dim 0
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%h:2 = dataflow.itensor_chunk %e {dim = 0 : i64} : !T -> !H, !H

// -----
// itensor_chunk: part dtype
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_chunk: part dtype i8 differs from f32
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%h:2 = dataflow.itensor_chunk %e {dim = 1 : i64} : !T -> !H, !dataflow.itensor<4x2xi8, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>

// -----
// itensor_chunk: dim missing
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_chunk: property 'dim' expected
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%h:2 = dataflow.itensor_chunk %e : !T -> !H, !H

// -----
// itensor_concat: dim out of range
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_concat: dim -1 is out of range for rank 2
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%a = dataflow.itensor_empty : !H
%k = dataflow.itensor_concat %a, %a {dim = -1 : i64} : !H, !H -> !T

// -----
// itensor_concat: sizes do not add up
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_concat: parts add up to 12 along dim 1, the whole has 8
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
!H = !dataflow.itensor<4x2xf32, [2, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%a = dataflow.itensor_empty : !H
%k = dataflow.itensor_concat %a, %a, %a {dim = 1 : i64} : !H, !H, !H -> !T

// -----
// itensor_concat: one part
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_concat: needs at least two parts, got 1
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%k = dataflow.itensor_concat %e {dim = 1 : i64} : !T -> !T

// -----
// itensor_converter: shape changes
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_converter: source shape [8, 8] differs from result shape [16, 8]
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%v = dataflow.itensor_converter %e : !T -> !dataflow.itensor<4x2xf32, [4, 4] * [2, 4], (d0, d1) -> (d1, d0)>

// -----
// itensor_converter: dtype changes
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_converter: source dtype f32 differs from result dtype bf16
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%v = dataflow.itensor_converter %e : !T -> !dataflow.itensor<4x2xbf16, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>

// -----
// itensor_converter: buffer_shape rank
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_converter: buffer shape [8] must have rank 2 and fit in the tensor [8, 8]
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%v = dataflow.itensor_converter %e {buffer_shape = array<i64: 8>} : !T -> !T

// -----
// itensor_converter: buffer larger than the tensor
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_converter: buffer shape [16, 2] must have rank 2 and fit in the tensor [8, 8]
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%v = dataflow.itensor_converter %e {buffer_shape = array<i64: 16, 2>} : !T -> !T

// -----
// itensor_converter: empty buffer dim
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_converter: buffer shape [8, 0] must have rank 2 and fit in the tensor [8, 8]
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%v = dataflow.itensor_converter %e {buffer_shape = array<i64: 8, 0>} : !T -> !T

// -----
// itensor_converter: more shared loops than loops
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_converter: shared_loops 3 must be between 0 and 2, the loop count of the shallower of source and result
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%v = dataflow.itensor_converter %e {shared_loops = 3 : i64} : !T -> !T

// -----
// itensor_converter: negative shared loops
// CHECK:      {{^//}} -----
// CHECK-NEXT: {{^}}dataflow.itensor_converter: shared_loops -1 must be between 0 and 2, the loop count of the shallower of source and result
!T = !dataflow.itensor<4x2xf32, [4, 2] * [2, 4], (d0, d1) -> (d1, d0)>
%e = dataflow.itensor_empty : !T
%v = dataflow.itensor_converter %e {shared_loops = -1 : i64} : !T -> !T
