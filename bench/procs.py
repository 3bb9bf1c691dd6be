"""Per-process CPU time and memory from /proc (Linux), for the processes a benchmark starts."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants(root: int) -> dict[int, str]:
    """pid → short name of every process below `root` (names from the command line)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            parents[pid] = int(_stat_fields(pid)[1])
            names[pid] = _name((entry / "cmdline").read_bytes().split(b"\0"))
        except (OSError, ValueError, IndexError):
            continue
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = names[pid]
                frontier.append(pid)
    return found


def _name(argv: list[bytes]) -> str:
    words = [a.decode(errors="replace") for a in argv if a]
    if "keyrail_cli.main" in words:
        return words[words.index("keyrail_cli.main") + 1]
    if words and words[0].endswith("nats-server"):
        return "nats-server"
    if len(words) > 1 and words[0].endswith("bao"):
        return "openbao"
    return Path(words[0]).name if words else "?"
