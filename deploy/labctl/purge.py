"""``python -m deploy.labctl.purge DATA_DIR NODE NETNS_PATH [...]``: nodeagent's purge for
several nodes in one process, printing one JSON list of what could not be removed.

Importing the node agent costs seconds on a busy machine while the purge itself takes
milliseconds, so the import happens once and each node's purge runs in a forked child that
first enters the node's network namespace (when it still exists): a spawner the purge has to
start then lives where the node's did.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _purge_in_child(data: Path, node: str, netns: Path) -> list[str]:
    from nodeagent.agent.agent import purge
    from nodeagent.runtime import linux

    if netns.exists():
        fd = os.open(netns, os.O_RDONLY)
        try:
            linux.setns(fd, linux.CLONE_NEWNET)
        finally:
            os.close(fd)
    return purge(data, node)


def main(argv: list[str]) -> int:
    import nodeagent.agent.agent  # noqa: F401  (imported once, before the forks)

    if len(argv) % 3:
        print("usage: purge DATA_DIR NODE NETNS_PATH [...]", file=sys.stderr)
        return 2
    children: list[tuple[str, int, int]] = []
    for i in range(0, len(argv), 3):
        data, node, netns = Path(argv[i]), argv[i + 1], Path(argv[i + 2])
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the parent's code
            os.close(r)
            try:
                result = _purge_in_child(data, node, netns)
            except BaseException as e:
                result = [f"purge {node}: {type(e).__name__}: {e}"]
            with os.fdopen(w, "w") as out:
                out.write(json.dumps(result))
            os._exit(0)
        os.close(w)
        children.append((node, pid, r))
    left: list[str] = []
    for node, pid, r in children:
        with os.fdopen(r) as inp:
            text = inp.read()
        os.waitpid(pid, 0)
        try:
            left += json.loads(text)
        except ValueError:
            left.append(f"purge {node}: no result")
    print(json.dumps(left))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
