"""Tests across network namespaces: several hosts on one machine (needs root, as `ip netns` does)."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from netlab import Lab  # noqa: E402


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root (ip netns)")
    built = Lab()
    yield built
    built.close()
