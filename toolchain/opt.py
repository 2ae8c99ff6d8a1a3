"""`streamdsl-opt`: xdsl-opt with the dataflow dialect and every streamdsl pass registered."""

from __future__ import annotations

from xdsl.xdsl_opt_main import xDSLOptMain

from toolchain.universe import STREAMDSL_UNIVERSE


class StreamdslOptMain(xDSLOptMain):
    def register_all_dialects(self) -> None:
        super().register_all_dialects()
        for name, factory in STREAMDSL_UNIVERSE.all_dialects.items():
            if name not in self.ctx.registered_dialect_names:
                self.ctx.register_dialect(name, factory)

    def register_all_passes(self) -> None:
        super().register_all_passes()
        for name, factory in STREAMDSL_UNIVERSE.all_passes.items():
            if name not in self.available_passes:
                self.register_pass(name, factory)


def main() -> None:
    StreamdslOptMain().run()


if __name__ == "__main__":
    main()
