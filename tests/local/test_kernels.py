"""Which kernels the embedded server moves to IPC (the rules in ``_embedded_kernels``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_interp.local.kernels import runs_ipykernel, socket_path_fits


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], True),
        (["/opt/py/bin/python3.11", "-Xfrozen_modules=off", "-m", "ipykernel", "-f", "x"], True),
        (["python3", "-X", "frozen_modules=off", "-W", "ignore", "-m", "ipykernel_launcher"], True),
        (["python", "-m", "bash_kernel", "-f", "{connection_file}"], False),
        (["deno", "jupyter", "--kernel", "--conn", "{connection_file}"], False),
        (["python", "-c", "import ipykernel_launcher", "-m", "ipykernel_launcher"], False),
        (["python", "script.py", "-m", "ipykernel_launcher"], False),
        (["python", "-", "-m", "ipykernel_launcher"], False),
        (["sudo", "-u", "kernel", "python", "-m", "ipykernel_launcher", "-f", "x"], False),
        (["conda", "run", "-n", "env", "python", "-m", "ipykernel_launcher", "-f", "x"], False),
        (["python", "-m"], False),
        (["python", "-X"], False),
        (["python"], False),
        ([], False),
    ],
)
def test_only_an_interpreter_running_ipykernel_directly_qualifies(
    argv: list[str], expected: bool
) -> None:
    assert runs_ipykernel(argv) is expected


_FLAGS = st.sampled_from(["-E", "-s", "-u", "-I", "-B", "-O", "-Xfrozen_modules=off"])


@given(
    st.lists(_FLAGS, max_size=5),
    st.sampled_from(["ipykernel_launcher", "ipykernel"]),
    st.lists(st.text(max_size=12), max_size=6),
)
def test_interpreter_options_before_the_module_keep_it_recognised(
    flags: list[str], module: str, after: list[str]
) -> None:
    assert runs_ipykernel(["/usr/bin/python3", *flags, "-m", module, *after])


@given(st.text(min_size=1, max_size=12).filter(lambda name: not name.startswith("python")))
def test_a_wrapper_in_front_keeps_tcp(wrapper: str) -> None:
    assert not runs_ipykernel([wrapper, "python", "-m", "ipykernel_launcher", "-f", "x"])


def test_socket_paths_must_leave_room_for_the_suffix_and_the_nul() -> None:
    # sun_path is 104 bytes on macOS (108 on Linux), the NUL included; "-NN" is appended.
    assert socket_path_fits("/" + "r" * 99)
    assert not socket_path_fits("/" + "r" * 100)
    assert not socket_path_fits("/" + "é" * 50)  # bytes count, not characters
