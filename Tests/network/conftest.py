"""Tests across network namespaces: several hosts on one machine (needs root, as `ip netns` does).
The browser helpers of Tests/e2e are re-exported, since their modules import them from
whichever `conftest` is current."""
import importlib.util
import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS / "integration"))
sys.path.insert(0, str(TESTS / "e2e"))
_spec = importlib.util.spec_from_file_location("e2e_conftest", TESTS / "e2e" / "conftest.py")
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)
CHROMIUM_ARGS, wait_for, wait_in_page = _e2e.CHROMIUM_ARGS, _e2e.wait_for, _e2e.wait_in_page
from netlab import Lab  # noqa: E402
from tallytest import start_tally  # noqa: E402,F401  (pytest finds fixtures by name here)


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root (ip netns)")
    built = Lab()
    yield built
    built.close()
