"""The names of a Contents API replace and the plan that recovers from a crash in it."""

from __future__ import annotations

import pytest

from jupyter_interp.protocol.contents_swap import SwapRecovery, aside_name, recovery, temp_name

_A, _B = "a" * 32, "b" * 32
_LONG = "x" * 40


def test_the_names_keep_a_short_prefix_and_tell_long_names_apart() -> None:
    assert temp_name("f.txt", _A).startswith("f.txt.")
    assert temp_name("f.txt", _A).endswith(f"-{_A}.part")
    assert aside_name("f.txt", _A).endswith(f"-{_A}.old")
    assert len(aside_name(_LONG, _A)) == 32 + 1 + 8 + 1 + 32 + 4
    assert aside_name(_LONG, _A) != aside_name(_LONG + "y", _A)  # same first 32 characters


def test_a_missing_target_gets_its_old_file_back_and_loses_the_swapped_temp_file() -> None:
    listed = [aside_name("f", _A), temp_name("f", _A), "other"]
    assert recovery("f", False, listed) == SwapRecovery(
        restore=aside_name("f", _A), remove=(temp_name("f", _A),)
    )


def test_a_present_target_loses_its_stray_old_files() -> None:
    listed = ["f", aside_name("f", _A), aside_name("f", _B), temp_name("f", _B)]
    plan = recovery("f", True, listed)
    assert plan.restore is None
    assert sorted(plan.remove) == sorted(
        [aside_name("f", _A), aside_name("f", _B), temp_name("f", _B)]
    )


def test_a_missing_target_with_two_old_files_gets_one_back_and_the_other_removed() -> None:
    plan = recovery("f", False, [aside_name("f", _A), aside_name("f", _B)])
    assert plan.restore is not None
    assert plan.remove == tuple({aside_name("f", _A), aside_name("f", _B)} - {plan.restore})


@pytest.mark.parametrize(
    ("name", "listed"),
    [
        ("f", [temp_name("f", _A)]),  # an upload in flight, or one that died before its swap
        (_LONG, [aside_name(_LONG + "y", _A)]),  # another file with the same first 32 chars
        ("f", [aside_name("g", _A)]),
        ("f", ["f.old", f"f.{_A}.old"]),  # not our names
    ],
    ids=["temp-only", "long-name-sibling", "other-file", "foreign"],
)
def test_nothing_else_is_touched(name: str, listed: list[str]) -> None:
    assert recovery(name, False, listed) == SwapRecovery()
    assert recovery(name, True, listed) == SwapRecovery()
