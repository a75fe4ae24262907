"""The browser places stage tiles exactly where the server does: web/js/layout.js, fed the
specs from GET /api/layouts, reproduces every golden case the Swift Layout module is held to."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "Tests/LayoutTests/Fixtures/golden.json"

COMPARE = """
async (golden) => {
  const {placeParticipants} = await import('/js/layout.js');
  const {layouts} = await (await fetch('/api/layouts')).json();
  const byName = Object.fromEntries(layouts.map(layout => [layout.name, layout]));
  const mismatches = [];
  for (const entry of golden) {
    const actual = placeParticipants(byName[entry.layout], entry.participants, entry.width, entry.height);
    if (JSON.stringify(actual) !== JSON.stringify(entry.placements)) mismatches.push({entry, actual});
  }
  return {checked: golden.length, mismatches: mismatches.slice(0, 3), layouts: layouts.map(layout => layout.name)};
}
"""


def test_browser_and_server_place_tiles_identically(start_tally, chromium):
    tally = start_tally({"TALLY_WEB_DIR": str(ROOT / "web"), "TALLY_LAYOUTS_DIR": str(ROOT / "layouts")})
    # Key order must match for the comparison: the golden file is written with sorted keys.
    golden = json.loads(GOLDEN.read_text())
    for entry in golden:
        entry["placements"] = [{key: placement[key] for key in ("participant", "x", "y", "width", "height", "z", "fit")}
                               for placement in entry["placements"]]
    page = chromium.new_page()
    page.goto(tally.url + "/api/health")
    result = page.evaluate(COMPARE, golden)
    assert result["checked"] == len(golden) > 100
    assert sorted(result["layouts"]) == ["grid", "pip", "sidebar", "solo", "spotlight"]
    assert result["mismatches"] == []
