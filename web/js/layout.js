// Tile placement from the layouts/*.json specs, the same arithmetic as Swift's
// LayoutSpec.place (Sources/Layout/LayoutSpec.swift): keep the two in step, operation for
// operation, so the studio preview and the program land on the same pixels. The golden test
// (Tests/LayoutTests/Fixtures/golden.json) runs both.

export const DEFAULT_ASPECT = 16 / 9;

// Tiles of one aspect, as large as fit: the column count that gives the widest tile (fewest
// columns on a tie), the grid centred, a short last row centred.
function arrange(count, arrangement, x, y, width, height, gap, aspect) {
  if (count <= 0) return [];
  const candidates = arrangement === 'row' ? [count] : arrangement === 'column' ? [1]
    : Array.from({length: count}, (_, index) => index + 1);
  let columns = candidates[0];
  let tileWidth = -1;
  for (const candidate of candidates) {
    const rows = Math.floor((count + candidate - 1) / candidate);
    const widthLimit = (width - (candidate - 1) * gap) / candidate;
    const heightLimit = (height - (rows - 1) * gap) / rows * aspect;
    const fitted = Math.min(widthLimit, heightLimit);
    if (fitted > tileWidth) {
      tileWidth = fitted;
      columns = candidate;
    }
  }
  const rows = Math.floor((count + columns - 1) / columns);
  const tileHeight = tileWidth / aspect;
  const gridHeight = rows * tileHeight + (rows - 1) * gap;
  const top = y + (height - gridHeight) / 2;
  const tiles = [];
  for (let row = 0; row < rows; row++) {
    const inRow = row === rows - 1 ? count - columns * (rows - 1) : columns;
    const rowWidth = inRow * tileWidth + (inRow - 1) * gap;
    const left = x + (width - rowWidth) / 2;
    for (let column = 0; column < inRow; column++) {
      tiles.push({x: left + column * (tileWidth + gap), y: top + row * (tileHeight + gap), width: tileWidth, height: tileHeight});
    }
  }
  return tiles;
}

// The tiles of `participants` (stage order: the first is featured) on a canvas of
// width × height pixels: [{participant, x, y, width, height, z, fit}].
export function placeParticipants(spec, participants, width, height) {
  const remaining = participants.slice(0, spec.max_participants);
  const groups = spec.regions.map(region => {
    const count = region.take === 'rest' ? remaining.length : Math.min(region.take, remaining.length);
    return remaining.splice(0, count);
  });
  const placements = [];
  spec.regions.forEach((region, index) => {
    if (groups[index].length === 0) return;
    const alone = groups.slice(index + 1).every(group => group.length === 0);
    const rect = alone ? (region.rect_when_alone ?? region.rect) : region.rect;
    const tiles = arrange(groups[index].length, region.arrange, rect[0] * width, rect[1] * height, rect[2] * width, rect[3] * height,
                          spec.gap * width, region.aspect ?? DEFAULT_ASPECT);
    groups[index].forEach((participant, position) => {
      const tile = tiles[position];
      const left = Math.round(tile.x), top = Math.round(tile.y);
      placements.push({participant, x: left, y: top, width: Math.round(tile.x + tile.width) - left,
                       height: Math.round(tile.y + tile.height) - top, z: index, fit: region.fit ?? 'cover'});
    });
  });
  return placements;
}
