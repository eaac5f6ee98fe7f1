"""kubectl-lite: the command line. Parses arguments, builds the client, runs one command, and turns
every failure into kubectl's one-line message and exit code 1 (never a traceback)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, cast

from apimachinery.client.kubeconfig import ClientConfig, KubeconfigError, load_kubeconfig
from apimachinery.client.rest import ApiClient
from apimachinery.scheme import default_scheme
from kubectl_lite import (
    apply,
    completion,
    config,
    delete,
    describe,
    edit,
    events,
    explain,
    get,
    info,
    logs,
    mutate,
    podexec,
    rollout,
    top,
    wait,
)
from kubectl_lite.context import Cli
from kubectl_lite.errors import format_exception


class _Parser(argparse.ArgumentParser):
    """Usage errors read like kubectl's (``error: ...``) and exit 1, not argparse's 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)


def _global_flags(suppress: bool) -> argparse.ArgumentParser:
    """Global flags, accepted before or after the command (defaults only at the top level, so a
    subcommand never overwrites a value given before it)."""
    default = argparse.SUPPRESS if suppress else None
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--kubeconfig", default=default, help="path to the kubeconfig file")
    p.add_argument("--context", default=default, help="the kubeconfig context to use")
    p.add_argument("-n", "--namespace", default=default, help="the namespace scope for this request")
    p.add_argument("--request-timeout", default=default, help="per-request timeout in seconds (default 60)")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kubectl-lite",
        description="kubectl-lite controls a kube-lite (or Kubernetes) cluster.",
        parents=[_global_flags(suppress=False)],
    )
    # Subcommand parsers are _Parser too (argparse uses the parent's class), typed as the base.
    sub = cast("argparse._SubParsersAction[argparse.ArgumentParser]", parser.add_subparsers(dest="command", metavar="COMMAND"))
    parents = [_global_flags(suppress=True)]
    apply.add_parser(sub, parents)
    get.add_parser(sub, parents)
    delete.add_parser(sub, parents)
    describe.add_parser(sub, parents)
    mutate.add_parsers(sub, parents)
    wait.add_parser(sub, parents)
    rollout.add_parser(sub, parents)
    logs.add_parser(sub, parents)
    podexec.add_parser(sub, parents)
    config.add_parser(sub, parents)
    info.add_parsers(sub, parents)
    edit.add_parser(sub, parents)
    events.add_parser(sub, parents)
    explain.add_parser(sub, parents)
    top.add_parser(sub, parents)
    completion.add_parser(sub, parents)
    return parser


def _config(args: argparse.Namespace) -> ClientConfig:
    try:
        return load_kubeconfig(args.kubeconfig, args.context)
    except KubeconfigError:
        # Commands that need no server (api-resources, version --client) work without a kubeconfig.
        if args.func is info.run_api_resources or (args.func is info.run_version and args.client):
            return ClientConfig(server="https://127.0.0.1:6443")
        raise


async def _run(args: argparse.Namespace) -> int:
    config = _config(args)
    timeout = float(args.request_timeout) if args.request_timeout else 60.0
    def warn(text: str) -> None:
        print(f"Warning: {text}", file=sys.stderr, flush=True)

    async with ApiClient(config, timeout=timeout, user_agent="kubectl-lite/0.1", on_warning=warn) as client:
        cli = Cli(
            client=client,
            scheme=default_scheme(),
            namespace=args.namespace or config.namespace,
            namespace_explicit=bool(args.namespace),
        )
        await args.func(cli, args)
        return cli.exit_code or (1 if cli.failed else 0)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    words = list(sys.argv[1:] if argv is None else argv)
    # Everything after "--" is a command for the container (exec), never kubectl-lite's flags.
    after: list[str] = []
    if "--" in words:
        cut = words.index("--")
        words, after = words[:cut], words[cut + 1 :]
    args = build_parser().parse_args(words)
    args.after_dashes = after
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    offline = getattr(args, "offline", None)
    if not offline and not getattr(args, "func", None):
        build_parser().print_help(sys.stderr)
        sys.exit(1)
    try:
        # Commands that only touch kubeconfig files run without a client or an event loop.
        code = offline(args) if offline else asyncio.run(_run(args))
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # `kubectl-lite get ... | head`: not an error; keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 1
    except Exception as exc:
        print(format_exception(exc), file=sys.stderr, flush=True)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
