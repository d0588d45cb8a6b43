"""Which kernels the embedded server moves to IPC (the rules in ``_embedded_kernels``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_interp._embedded_kernels import runs_ipykernel, socket_path_fits


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], True),
        (["/opt/py/bin/python3", "-Xfrozen_modules=off", "-m", "ipykernel", "-f", "x"], True),
        (["python", "-m", "bash_kernel", "-f", "{connection_file}"], False),
        (["deno", "jupyter", "--kernel", "--conn", "{connection_file}"], False),
        (["python", "-c", "import ipykernel_launcher", "-f", "x"], False),
        (["python", "-m"], False),
        (["ipykernel_launcher"], False),
        ([], False),
    ],
)
def test_only_kernelspecs_running_ipykernel_as_a_module_qualify(
    argv: list[str], expected: bool
) -> None:
    assert runs_ipykernel(argv) is expected


@given(st.lists(st.text(max_size=12), max_size=6), st.lists(st.text(max_size=12), max_size=6))
def test_an_ipykernel_module_anywhere_in_argv_qualifies(
    before: list[str], after: list[str]
) -> None:
    assert runs_ipykernel([*before, "-m", "ipykernel_launcher", *after])


def test_socket_paths_must_leave_room_for_the_suffix_and_the_nul() -> None:
    # sun_path is 104 bytes on macOS (108 on Linux), the NUL included; "-NN" is appended.
    assert socket_path_fits("/" + "r" * 99)
    assert not socket_path_fits("/" + "r" * 100)
    assert not socket_path_fits("/" + "é" * 50)  # bytes count, not characters
