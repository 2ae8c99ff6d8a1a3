"""xDSL module passes (`insert-converters`, `size-fifos`), registered in toolchain.universe."""
