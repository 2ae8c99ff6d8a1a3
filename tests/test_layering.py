"""`streamdsl` is the language: importing any of its modules loads none of the packages built on
it (frontends, lowering, hls_backend). Only the drivers import them, lazily, when called."""

import subprocess
import sys

CHECK = """
import importlib, pkgutil, sys
import streamdsl
for info in pkgutil.walk_packages(streamdsl.__path__, "streamdsl."):
    importlib.import_module(info.name)
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"frontends", "lowering", "hls_backend"})
print(",".join(loaded))
"""


def test_streamdsl_imports_nothing_built_on_it():
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
