// AttnScope head and model views as files: a PNG of what is drawn (the lines' canvas with the
// tokens written beside it) and an SVG built from the same drawing data (a <text> node per token,
// a <line> per attention line). Tokens go in with textContent / fillText, elements with
// createElementNS, and XMLSerializer writes the file: token text is never parsed as markup.
// Concatenated before attention_view.js into one ES module (viz/attention_view.py view_assets).

const SVG_NS = "http://www.w3.org/2000/svg";
const EXPORT_FONT = 'system-ui, "Noto Sans CJK JP", "Noto Sans", sans-serif';
const EXPORT_TEXT = "#31333f";
const EXPORT_DIM = "#b8b9bf";

function svgNode(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function downloadBlob(blob, fileName) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;
  link.style.display = "none";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
}

function downloadSvg(svg, fileName) {
  const text = new XMLSerializer().serializeToString(svg);
  const blob = new Blob(['<?xml version="1.0" encoding="UTF-8"?>\n', text], {
    type: "image/svg+xml",
  });
  downloadBlob(blob, fileName);
}

function downloadPng(canvas, fileName) {
  canvas.toBlob((blob) => {
    if (blob) downloadBlob(blob, fileName);
  }, "image/png");
}

// Two small buttons, "PNG" and "SVG", that call onPng / onSvg.
function saveButtons(strings, onPng, onSvg) {
  const box = document.createElement("span");
  box.className = "atv-save";
  const make = (kind, label, format, action) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = `atv-save-button atv-save-${kind}`;
    button.textContent = label;
    button.title = fmt(strings.save_title, { format });
    button.addEventListener("click", action);
    box.appendChild(button);
  };
  make("png", strings.save_png, "PNG", onPng);
  make("svg", strings.save_svg, "SVG", onSvg);
  return box;
}

// A line view as a scene: tokens in two columns, the lines drawn between them.
// scene = {tokens, keys, col, lineWidth, rowH, font, dimLeft(i), dimRight(j), lines: [[h, i, j,
// alpha, width], ...]}: `tokens` the queries (left), `keys` the keys (right; the same tokens
// unless cross-attention); the picture is (2 col + lineWidth) x (max(n, m) rowH) px.
function sceneKeys(scene) {
  return scene.keys || scene.tokens;
}

function sceneSize(scene) {
  const rows = Math.max(scene.tokens.length, sceneKeys(scene).length);
  return { width: 2 * scene.col + scene.lineWidth, height: rows * scene.rowH };
}

function lineViewPng(scene, linesCanvas, ratio, fileName) {
  const { width, height } = sceneSize(scene);
  const out = document.createElement("canvas");
  out.width = Math.round(width * ratio);
  out.height = Math.round(height * ratio);
  const ctx = out.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(linesCanvas, scene.col, 0, scene.lineWidth, height);
  ctx.font = `${scene.font}px ${EXPORT_FONT}`;
  ctx.textBaseline = "middle";
  const room = scene.col - 8;
  scene.tokens.forEach((token, i) => {
    ctx.fillStyle = scene.dimLeft(i) ? EXPORT_DIM : EXPORT_TEXT;
    ctx.textAlign = "right";
    ctx.fillText(token, scene.col - 5, (i + 0.5) * scene.rowH, room);
  });
  sceneKeys(scene).forEach((token, j) => {
    ctx.fillStyle = scene.dimRight(j) ? EXPORT_DIM : EXPORT_TEXT;
    ctx.textAlign = "left";
    ctx.fillText(token, scene.col + scene.lineWidth + 5, (j + 0.5) * scene.rowH, room);
  });
  downloadPng(out, fileName);
}

function lineViewSvg(scene, fileName) {
  const { width, height } = sceneSize(scene);
  const svg = svgNode("svg", {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    "font-family": EXPORT_FONT,
    "font-size": scene.font,
  });
  svg.appendChild(svgNode("rect", { width, height, fill: "#ffffff" }));
  const y = (i) => ((i + 0.5) * scene.rowH).toFixed(1);
  const lines = svgNode("g", { class: "attention", "stroke-linecap": "round" });
  for (const [h, i, j, alpha, lineWidth] of scene.lines) {
    lines.appendChild(
      svgNode("line", {
        x1: scene.col,
        y1: y(i),
        x2: scene.col + scene.lineWidth,
        y2: y(j),
        stroke: headColor(h),
        "stroke-opacity": alpha.toFixed(2),
        "stroke-width": lineWidth,
      })
    );
  }
  svg.appendChild(lines);
  const queries = svgNode("g", { class: "queries", "text-anchor": "end" });
  const keys = svgNode("g", { class: "keys", "text-anchor": "start" });
  scene.tokens.forEach((token, i) => {
    const common = { y: y(i), "dominant-baseline": "central" };
    const fill = scene.dimLeft(i) ? EXPORT_DIM : EXPORT_TEXT;
    queries.appendChild(svgNode("text", { ...common, x: scene.col - 5, fill }, token));
  });
  sceneKeys(scene).forEach((token, j) => {
    const common = { y: y(j), "dominant-baseline": "central" };
    const fill = scene.dimRight(j) ? EXPORT_DIM : EXPORT_TEXT;
    const x = scene.col + scene.lineWidth + 5;
    keys.appendChild(svgNode("text", { ...common, x, fill }, token));
  });
  svg.appendChild(queries);
  svg.appendChild(keys);
  downloadSvg(svg, fileName);
}

// The model view's grid: the thumbnails' canvas with "L0".."H0" labels around it.
const GRID_TOP = 18;

function modelGridPng(grid, fileName) {
  const { canvas, nLayers, nHeads, x, y, cell } = grid;
  const cellH = grid.cellH ?? cell;
  const out = document.createElement("canvas");
  out.width = ROW_LABELS + canvas.width;
  out.height = GRID_TOP + canvas.height;
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.drawImage(canvas, ROW_LABELS, GRID_TOP);
  ctx.fillStyle = EXPORT_TEXT;
  ctx.font = `12px ${EXPORT_FONT}`;
  ctx.textBaseline = "middle";
  ctx.textAlign = "center";
  for (let h = 0; h < nHeads; h++) ctx.fillText(`H${h}`, ROW_LABELS + x(h) + cell / 2, GRID_TOP / 2);
  ctx.textAlign = "right";
  for (let l = 0; l < nLayers; l++) ctx.fillText(`L${l}`, ROW_LABELS - 6, GRID_TOP + y(l) + cellH / 2);
  downloadPng(out, fileName);
}

function modelGridSvg(grid, fileName) {
  const { canvas, nLayers, nHeads, x, y, cell } = grid;
  const cellH = grid.cellH ?? cell;
  const width = ROW_LABELS + canvas.width;
  const height = GRID_TOP + canvas.height;
  const svg = svgNode("svg", {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    "font-family": EXPORT_FONT,
    "font-size": 12,
  });
  svg.appendChild(svgNode("rect", { width, height, fill: "#ffffff" }));
  // the thumbnails are pixels (max-pooled weights): one embedded PNG, drawn without smoothing
  svg.appendChild(
    svgNode("image", {
      x: ROW_LABELS,
      y: GRID_TOP,
      width: canvas.width,
      height: canvas.height,
      href: canvas.toDataURL("image/png"),
      style: "image-rendering: pixelated",
    })
  );
  const heads = svgNode("g", { class: "heads", "text-anchor": "middle", fill: EXPORT_TEXT });
  for (let h = 0; h < nHeads; h++) {
    const at = { x: ROW_LABELS + x(h) + cell / 2, y: GRID_TOP / 2, "dominant-baseline": "central" };
    heads.appendChild(svgNode("text", at, `H${h}`));
  }
  const layers = svgNode("g", { class: "layers", "text-anchor": "end", fill: EXPORT_TEXT });
  for (let l = 0; l < nLayers; l++) {
    const at = { x: ROW_LABELS - 6, y: GRID_TOP + y(l) + cellH / 2, "dominant-baseline": "central" };
    layers.appendChild(svgNode("text", at, `L${l}`));
  }
  svg.appendChild(heads);
  svg.appendChild(layers);
  downloadSvg(svg, fileName);
}
