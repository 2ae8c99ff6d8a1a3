"""The tool chain on top of every layer: the `streamdsl` command line (`cli`), the end-to-end
compile driver (`driver`), the built-in example programs (`examples`), and the registration of
the dialect and passes with xDSL tools (`universe`, `streamdsl-opt` in `opt`).

It is the only package that imports `frontends`, `lowering` and `hls_backend` together; nothing
below imports it (docs/architecture.md, "Layers").
"""
