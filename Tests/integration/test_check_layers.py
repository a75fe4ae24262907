"""scripts/check-layers holds imports to docs/architecture.md's table: it passes the tree as
it is, and fails on an import the table does not allow, a module it does not list, or a cycle."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-layers"


def tree(tmp_path, rows, sources):
    (tmp_path / "docs").mkdir()
    table = "\n".join(f"| `{module}` | {', '.join(f'`{d}`' for d in deps) or '—'} |" for module, deps in rows.items())
    (tmp_path / "docs" / "architecture.md").write_text(f"# A\n\n## Allowed imports\n\n| module | may import |\n|---|---|\n{table}\n\n## Next\n")
    for module, text in sources.items():
        (tmp_path / "Sources" / module).mkdir(parents=True)
        (tmp_path / "Sources" / module / "File.swift").write_text(text)
    return subprocess.run([str(SCRIPT), str(tmp_path)], capture_output=True, text=True)


def test_the_tree_as_it_is_passes():
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_forbidden_import_fails_with_its_place(tmp_path):
    result = tree(tmp_path, {"Low": [], "High": ["Low"]}, {"Low": "@testable import High\nimport Foundation\n", "High": "import Low\n"})
    assert result.returncode == 1
    assert "Sources/Low/File.swift:1: Low may not import High" in result.stderr


def test_an_unlisted_module_and_a_cycle_fail(tmp_path):
    result = tree(tmp_path, {"A": ["B"], "B": ["A"]}, {"A": "import B\n", "B": "import A\n", "C": ""})
    assert result.returncode == 1
    assert "Sources/C is not in the Allowed imports table" in result.stderr
    assert "cycle: A -> B -> A" in result.stderr
