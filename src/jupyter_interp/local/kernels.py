"""The embedded server's kernel manager: ipykernel kernels talk to it over IPC.

Loaded by name (``--MappingKernelManager.kernel_manager_class``) inside the private
Jupyter Server that ``launcher`` starts, never by the client: it imports jupyter_server.

Why: over TCP, the server picks each kernel's five ports by binding port 0 and letting
go, and the kernel binds them a few hundred milliseconds later. Meanwhile every
ipykernel binds an OS-chosen loopback port of its own (its iopub pipe), so when many
kernels start at once one of them can take a port picked for another. That kernel dies
with "Address already in use", is restarted on new ports, and the server holds the
WebSocket open on it for minutes before dropping it. Unix sockets need no ports, so an
ipykernel kernel on IPC cannot lose that race.

Strategy: on a kernel's first start, switch it to IPC when all of these hold, else leave
it exactly as Jupyter would start it (TCP):

* its kernelspec is a Python interpreter running ipykernel (``-m ipykernel_launcher`` or
  ``-m ipykernel``) with no wrapper in front: a kernel known to read ``transport`` from
  its connection file (Deno's, for one, cannot), on this host, as this user;
* nobody configured ``KernelManager.transport`` (an explicit choice wins);
* this pyzmq supports IPC and the socket paths, which live beside the connection file
  in the server's private runtime directory, fit in a Unix socket address.

Restarts keep the transport the first start chose.

A kernel being shut down is checked for its exit every 10 ms rather than jupyter_client's
100 ms, which took a tenth of a second off every shutdown (and off the one-shot
``jupyter-interp exec``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import zmq
from jupyter_server.services.kernels.kernelmanager import ServerKernelManager

__all__ = ["EmbeddedKernelManager", "runs_ipykernel", "socket_path_fits"]

# sun_path holds 108 bytes on Linux and 104 on macOS, with a terminating NUL; jupyter_client
# appends "-<n>" to the prefix, n a small number.
_SOCKET_PATH_LIMIT = 103
_SUFFIX_ROOM = len("-99")
_IPYKERNEL_MODULES = frozenset({"ipykernel_launcher", "ipykernel"})
_OPTIONS_WITH_VALUE = frozenset({"-X", "-W"})
#: seconds between checks that a stopping kernel has exited
_EXIT_POLL = 0.01


def runs_ipykernel(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is a Python interpreter running ipykernel as a module, directly.

    Only interpreter options may stand between (``-X``/``-W`` with their values). A
    wrapper in front (``sudo``, ``conda run``, ``docker``, ``ssh``) may run the kernel as
    another user or where our sockets are not, so its kernelspec keeps TCP; so does
    anything this reading does not recognise.
    """
    if not argv or not os.path.basename(argv[0]).startswith("python"):
        return False
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument == "-m":
            return next(arguments, None) in _IPYKERNEL_MODULES
        if argument in _OPTIONS_WITH_VALUE:
            next(arguments, None)
        elif not argument.startswith("-") or argument == "-" or argument.startswith("-c"):
            return False  # a script, stdin or -c: not a module run
    return False


def socket_path_fits(prefix: str) -> bool:
    """Whether Unix socket paths ``<prefix>-<n>`` fit in a socket address."""
    return len(os.fsencode(prefix)) + _SUFFIX_ROOM <= _SOCKET_PATH_LIMIT


class EmbeddedKernelManager(ServerKernelManager):
    """Jupyter Server's kernel manager, with IPC for ipykernel kernels (see the module)."""

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        if self.provisioner is None:  # a first start; a restart keeps its transport
            self._choose_ipc()
        return await super()._async_pre_start_kernel(**kw)

    def _choose_ipc(self) -> None:
        if self.transport != "tcp" or self._transport_configured() or not zmq.has("ipc"):
            return
        spec = self.kernel_spec
        if spec is None or not self.connection_file or not runs_ipykernel(spec.argv):
            return
        prefix = os.path.splitext(self.connection_file)[0] + "-ipc"
        if not socket_path_fits(prefix):
            return
        self.transport = "ipc"
        self.ip = prefix
        self.cache_ports = False  # the port cache binds TCP ports; IPC needs none

    async def _async_finish_shutdown(
        self, waittime: float | None = None, pollinterval: float = 0.1, restart: bool = False
    ) -> None:
        # jupyter_client checks every 0.1 s whether a stopping kernel has exited, which
        # was half of a shutdown's 0.2 s; a check costs a waitpid, so check every 10 ms.
        await super()._async_finish_shutdown(waittime, min(pollinterval, _EXIT_POLL), restart)

    def _transport_configured(self) -> bool:
        """Whether config sets ``transport`` on any class this one inherits it from (the
        sections traitlets would read it from)."""
        return any(
            cls.__name__ in self.config and "transport" in self.config[cls.__name__]
            for cls in type(self).__mro__
        )
