"""`streamdsl`: the command line. Exit codes: 0 success, 1 verification failed, 2 usage or input error."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class Console:
    """Progress on stderr (so stdout stays clean for IR and tables), muted by --quiet."""

    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity
        self.start = time.perf_counter()

    def step(self, message: str) -> None:
        if self.verbosity >= 1:
            print(f"[{time.perf_counter() - self.start:7.2f}s] {message}", file=sys.stderr, flush=True)

    def detail(self, message: str) -> None:
        if self.verbosity >= 2:
            print(f"          {message}", file=sys.stderr, flush=True)


def cmd_itensor(args: argparse.Namespace, console: Console) -> int:
    """Print the paper's Fig. 5 itensor layouts as IR types with their token order."""
    import streamdsl as sd

    layouts = {
        "(a) row-major 2x2 tiles": sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(2, 2)),
        "(b) 4x2 tiles, column of tiles at a time": sd.itensor.tiled(sd.f32, shape=(8, 8), tile=(4, 2), order=(1, 0)),
        "(c) as (b), each column streamed twice": sd.itensor(
            sd.f32, tile=(4, 2), trips=(4, 2, 2), steps=(2, 1, 4), map="(d0, d1, d2) -> (d2, d0)"
        ),
    }
    for title, it in layouts.items():
        console.step(f"layout {title}")
        print(f"// {title}: {it.num_tokens} tokens, shape {list(it.shape)}, regular={it.is_regular}")
        print(it.to_ir())
        order = " ".join(f"({o[0]},{o[1]})" for o in it.tokens())
        print(f"// token offsets: {order}\n")
    return EXIT_OK


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace, Console], int], str]] = {
    "itensor": (cmd_itensor, "print the paper's Fig. 5 itensor layouts with their stream order"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamdsl",
        description="Compile LLM inference into stream dataflow accelerators for the AMD Alveo U55C.",
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="print details of every step")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(0 if args.quiet else 2 if args.verbose else 1)
    handler, _ = COMMANDS[args.command]
    try:
        return handler(args, console)
    except BrokenPipeError:  # `streamdsl ... | head` closed our stdout: not an error
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
