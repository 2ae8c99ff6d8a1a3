"""Lowering passes: layout converters, the timing model, FIFO sizing (python-mip)."""
