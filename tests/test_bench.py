"""The benches under bench/ still start: each script imports its parts and parses its
options (`--help`), so a change that breaks one is caught here, not at the next
measurement. (Running them is measuring, and stays out of the suite.)"""

from __future__ import annotations

import pytest

from tests import prewarmed

SCRIPTS = ["codec", "data", "ddp", "metrics", "quantizer", "train_step"]


def test_every_bench_script_is_listed():
    scripts = {p.stem for p in (prewarmed.REPO / "bench").glob("*.py") if "def main(" in p.read_text()}
    assert scripts == set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bench_script_starts_and_describes_its_options(script):
    result = prewarmed.run([str(prewarmed.REPO / "bench" / f"{script}.py"), "--help"], timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("usage: ") and "--" in result.stdout
