"""Fixtures of the hostile suite, from `hostile` (test modules import its helpers by that
name: every test folder has a conftest, so none can be imported as `conftest`)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile import figures, tally  # noqa: E402,F401  (pytest finds fixtures by name here)
from tallytest import start_tally  # noqa: E402,F401
