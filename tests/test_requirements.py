"""Every module a test skips without (`pytest.importorskip`) is pinned in a requirements file, so no test is
skipped on a machine set up by the README's commands."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pinned() -> set[str]:
    names = set()
    for path in (ROOT / "requirements.txt", ROOT / "tests" / "requirements.txt"):
        for line in path.read_text().splitlines():
            match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*==", line)
            if match:
                names.add(match.group(1).lower().replace("-", "_"))
    return names


def test_every_importorskip_module_is_pinned():
    skipped = {m.split(".")[0].lower() for path in ROOT.glob("tests/**/*.py")
               for m in re.findall(r"importorskip\(\s*['\"]([\w.]+)['\"]", path.read_text())}
    assert skipped, "no importorskip found: the pattern is out of date"
    assert skipped <= _pinned(), f"modules tests skip without but no requirements file pins: {skipped - _pinned()}"
