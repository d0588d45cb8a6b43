"""The examples in the blocking, notebook-export and observability docs run as written.

Each ```python block runs in a fresh interpreter (its own private server, as the
example says); a block that fails its own asserts fails the test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

_DOCS = Path(__file__).parents[2] / "docs"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
_EXAMPLES = [
    pytest.param(code, id=f"{name}-{index}")
    for name in ("blocking.md", "api.md", "observability.md")
    for index, code in enumerate(_BLOCK.findall((_DOCS / name).read_text(encoding="utf-8")))
]


@pytest.mark.parametrize("code", _EXAMPLES)
def test_the_example_runs(code: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
