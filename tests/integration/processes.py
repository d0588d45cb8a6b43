"""Queries about processes, read from Linux ``/proc``: who carries an environment entry,
who is running, who are a process's children. Used by server teardown and by tests
that check nothing they started outlives them.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

__all__ = ["child_pids", "is_running", "pids_with_env"]


def pids_with_env(name: str, value: str) -> set[int]:
    """Pids of live (non-zombie) processes whose environment holds ``name=value``."""
    entry = f"{name}={value}".encode()
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with suppress(OSError):  # gone, a zombie, or not ours to read
            if entry in (proc / "environ").read_bytes().split(b"\0"):
                pids.add(int(proc.name))
    return pids


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, ...), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def child_pids(pid: int) -> set[int]:
    """Pids of the running direct children of ``pid``."""
    children = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            fields = _stat_fields(int(proc.name))
            if fields is not None and fields[1] == str(pid) and fields[0] not in ("Z", "X"):
                children.add(int(proc.name))
    return children
