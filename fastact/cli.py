"""The ``fastact`` command line: ``fastact info | bench | train | compare``.

Each subcommand lives in the module that does its work and registers itself
through a ``register(subparsers)`` function; this file only wires them up,
importing each module when the command line is built (heavy dependencies such
as matplotlib are imported by the commands themselves, when run).
"""

import argparse
import importlib
import sys

# Modules that implement subcommands outside this file.
_COMMAND_MODULES = ("fastact.bench", "fastact.nn.commands")


def _info(args):
    import fastact

    fastact.show_config()
    return 0


def build_parser():
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="fastact", description="Fast, exact CPU kernels for neural-network activations."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    info = subparsers.add_parser("info", help="show how fastact was built and what it runs with")
    info.set_defaults(func=_info)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv=None):
    """Run the command line; returns the process exit status.

    A bad argument prints the usage and raises ``SystemExit(2)`` (argparse's
    convention); a runtime error prints one line and returns 1; Ctrl-C
    returns 130.  No traceback is shown: the commands report the errors they
    expect themselves, and anything else is reported here in one line.
    """
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        # kept for commands that run themselves again in a new environment
        args.argv = list(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:  # Ctrl-C while the commands' modules import
        print("fastact: interrupted", file=sys.stderr)
        return 130
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"fastact {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure: still one line, status 1
        message = " ".join(str(exc).split())
        print(f"fastact {args.command}: error: {type(exc).__name__}"
              + (f": {message}" if message else ""), file=sys.stderr)
        return 1
