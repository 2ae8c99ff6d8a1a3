"""xDSL module passes (`fuse-elementwise`, `tile-linalg`, `form-kernels`, `fuse-kernels`,
`insert-converters`, `size-fifos`), registered in toolchain.universe."""
