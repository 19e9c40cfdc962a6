// AttnScope's offline report (viz/report.py): the head view, model view, heatmaps and tables,
// drawn from the JSON in <script id="attnscope-report-data" type="application/json">, which is
// read with textContent and JSON.parse. Text reaches the page through textContent only.
// viz/report.py appends this file to the views' module (viz/attention_view.py view_assets), all
// in one <script type="module"> with the page's nonce, and calls its drawAttentionView.

const REPORT = JSON.parse(document.getElementById("attnscope-report-data").textContent);
const PLOTLY_CONFIG = { displaylogo: false, responsive: true };

function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function byId(id) {
  return document.getElementById(id);
}

function layerOptions(select, layers) {
  for (const layer of layers) {
    const option = el("option", null, fmt(REPORT.strings.layer_n, { layer }));
    option.value = String(layer);
    select.appendChild(option);
  }
}

function describe() {
  const s = REPORT.strings;
  document.title = `${s.title} · ${REPORT.model}`;
  byId("r-title").textContent = s.title;
  const facts = byId("r-facts");
  for (const [label, value] of REPORT.facts) {
    facts.append(el("dt", null, label), el("dd", null, value));
  }
  byId("r-text-label").textContent = s.text;
  byId("r-text").textContent = REPORT.text;
  if (REPORT.pair !== null) {
    byId("r-pair-label").textContent = s.pair;
    byId("r-pair").textContent = REPORT.pair;
  } else {
    byId("r-pair-label").hidden = true;
    byId("r-pair").hidden = true;
  }
  if (REPORT.notes.length) byId("r-notes").textContent = REPORT.notes.join(" ");
  byId("r-footer").textContent = s.footer;
}

// The head view of the layer chosen; the model view's thumbnails open a layer and head in it.
function views() {
  const s = REPORT.strings;
  const layers = Object.keys(REPORT.head_views).map(Number);
  const box = byId("r-head-view");
  const select = byId("r-head-layer");
  byId("r-head-title").textContent = s.head_view;
  byId("r-head-layer-label").textContent = s.layer;
  byId("r-model-title").textContent = s.model_view;
  byId("r-model-hint").textContent = layers.length ? s.model_hint : "";
  const cache = new Map();
  const show = (layer) => {
    if (!cache.has(layer)) cache.set(layer, base64Bytes(REPORT.head_views[layer]));
    drawAttentionView({ data: cache.get(layer), parentElement: box, setStateValue: () => {} });
  };
  const open = (name, value) => {
    if (name !== "selected" || !(value.layer in REPORT.head_views)) return;
    select.value = String(value.layer);
    const root = box.querySelector(".atv-root");
    if (root && root.__ui) {
      root.__ui.visible = new Set([value.head]);
      delete root.dataset.viewId; // same layer, other head: draw again
    }
    show(value.layer);
    byId("r-head").scrollIntoView({ block: "start" });
  };
  if (layers.length) {
    layerOptions(select, layers);
    select.addEventListener("change", () => show(Number(select.value)));
    show(layers[0]);
  } else {
    byId("r-head").hidden = true;
  }
  drawAttentionView({
    data: base64Bytes(REPORT.model_view),
    parentElement: byId("r-model-view"),
    setStateValue: open,
  });
}

function heatmaps() {
  const s = REPORT.strings;
  byId("r-heatmaps-title").textContent = s.heatmaps;
  const layers = Object.keys(REPORT.heatmaps).map(Number);
  const select = byId("r-heatmap-layer");
  const target = byId("r-heatmap");
  byId("r-heatmap-layer-label").textContent = s.layer;
  const draw = (layer) => {
    const figure = REPORT.heatmaps[layer];
    Plotly.react(target, figure.data, figure.layout, PLOTLY_CONFIG);
  };
  if (layers.length) {
    layerOptions(select, layers);
    select.addEventListener("change", () => draw(Number(select.value)));
    draw(layers[0]);
  } else {
    select.parentElement.hidden = true;
  }
  const entropy = REPORT.entropy;
  Plotly.newPlot(byId("r-entropy"), entropy.data, entropy.layout, PLOTLY_CONFIG);
}

function cellText(value, digits) {
  if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(digits);
  return value === null ? "" : String(value);
}

function tables() {
  const box = byId("r-tables");
  byId("r-tables-title").textContent = REPORT.strings.tables;
  for (const table of REPORT.tables) {
    box.appendChild(el("h3", null, table.title));
    const scroll = el("div", "r-table-scroll");
    const grid = el("table", "r-table");
    grid.dataset.name = table.name;
    const headRow = el("tr");
    table.columns.forEach((column) => headRow.appendChild(el("th", null, column)));
    grid.appendChild(el("thead")).appendChild(headRow);
    const body = grid.appendChild(el("tbody"));
    for (const row of table.rows) {
      const line = el("tr");
      row.forEach((value) => {
        const cell = el("td", null, cellText(value, table.digits));
        if (typeof value === "number") {
          cell.dataset.value = String(value);
          cell.className = "r-number";
        }
        line.appendChild(cell);
      });
      body.appendChild(line);
    }
    scroll.appendChild(grid);
    box.appendChild(scroll);
  }
}

describe();
views();
heatmaps();
tables();
document.body.dataset.state = "drawn";
