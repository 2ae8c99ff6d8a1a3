"""`streamdsl-opt`: xdsl-opt with the dataflow dialect and every streamdsl pass registered.

Unlike xdsl-opt, a bad input (a missing, binary or malformed file, an unknown pass, a bad pass
option, IR a pass rejects) is one message and exit 2, an internal error exit 3 (`--traceback`
shows it), and `-o FILE` is written through a temporary file renamed only on success, so a
failing pass never truncates FILE (not even when FILE is the input).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from io import BytesIO, StringIO
from typing import IO

from xdsl.dialects.builtin import ModuleOp
from xdsl.xdsl_opt_main import xDSLOptMain

from streamdsl.errors import UsageError
from streamdsl.output import atomic_output_file
from toolchain.cli import report_errors
from toolchain.universe import STREAMDSL_UNIVERSE

__all__ = ["StreamdslOptMain", "main"]


class _Collected(StringIO):
    """The output, kept past xdsl-opt's `close()` until the run has succeeded."""

    def close(self) -> None:
        pass


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

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument("--traceback", action="store_true", help="print the traceback of an error")

    def setup_pipeline(self) -> None:
        try:
            super().setup_pipeline()
        except ValueError as err:  # xDSL: "Unrecognized passes: [...]", "Provided arguments [...] not found"
            raise UsageError(f"-p {self.args.passes}: {err}; `streamdsl-opt --help` lists the passes") from None

    def get_input_stream(self) -> tuple[IO[bytes], str]:
        try:
            return super().get_input_stream()
        except OSError as err:
            raise UsageError(f"cannot read {self.args.input_file}: {err.strerror}") from None

    def prepare_input(self) -> tuple[list[tuple[IO[bytes], int]], str]:
        try:
            return super().prepare_input()
        except UsageError:
            raise
        except ValueError as err:  # "Unrecognized file extension"
            raise UsageError(f"{self.args.input_file}: {err}; name IR files *.mlir or pass -f mlir") from None

    def parse_chunk(self, chunk: IO[bytes], file_extension: str, start_offset: int = 0) -> ModuleOp | None:
        text = chunk.read()
        if not text.strip() and not self.args.split_input_file:
            raise UsageError(f"{self.get_input_name()} is empty; give an MLIR module (e.g. `builtin.module {{}}`)")
        try:
            return super().parse_chunk(BytesIO(text), file_extension, start_offset)
        except UnicodeDecodeError as err:
            raise UsageError(f"{self.get_input_name()} is not UTF-8 text ({err.reason} at byte {err.start}); "
                             "give an MLIR text file") from None
        except ValueError as err:  # xDSL raises plain ValueErrors for some malformed names (a block `^0`)
            raise UsageError(f"{self.get_input_name()}: {' '.join(map(str, err.args))}") from None

    def prepare_output(self) -> IO[str]:
        return sys.stdout if self.args.output_file is None else self.collected

    def run(self) -> None:
        if self.args.output_file is None:
            return super().run()
        self.collected = _Collected()
        with atomic_output_file(self.args.output_file) as stream:  # checks the path before any work
            super().run()
            stream.write(self.collected.getvalue())
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--traceback" in args

    def body() -> int:
        StreamdslOptMain(args=args).run()
        return 0

    return report_errors("streamdsl-opt", body, verbose, "--traceback")


if __name__ == "__main__":
    sys.exit(main())
