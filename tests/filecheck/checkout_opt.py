"""`streamdsl-opt` of the checkout this file is in, whatever streamdsl is installed: the console
script's target is read from the checkout's pyproject.toml and imported from the checkout."""

import importlib
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["streamdsl-opt"]
    module, _, function = target.partition(":")
    sys.path.insert(0, str(ROOT))
    sys.argv[0] = "streamdsl-opt"
    sys.exit(getattr(importlib.import_module(module), function)())
