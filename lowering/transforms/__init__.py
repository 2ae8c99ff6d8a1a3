"""xDSL module passes (`insert-converters`, `size-fifos`), registered in streamdsl.universe."""
