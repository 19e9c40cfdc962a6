// AttnScope head view and model view: a Streamlit components-v2 module.
//
// Reads the binary payload made by viz/attention_view.py (see its docstring for the layout), draws
// attention lines on a <canvas> (only each row's strongest keys above a threshold, so tens of
// thousands of lines at most) and token labels as text nodes (textContent, never markup).
// Hovering a token shows its every weight; clicking a head (swatch or thumbnail) selects it in
// the app through the component state "selected" = {layer, head}. Shift-clicking query tokens
// (left) gathers them into a selection (BertViz #125): the lines and the keys' weights then show
// the selected rows' summed or mean attention, until the selection is cleared. A sentence pair can be narrowed
// to one direction (A→B, B→A, A→A, B→B), as in BertViz. The neuron view is in neuron_view.js.
// Cross-attention is rectangular: the header's `tokens` are the queries (left, the target) and
// `key_tokens` the keys (right, the source); a payload without `key_tokens` is square.

const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
];
const TOP_K_CHOICES = [1, 3, 5, 10];
const HOVER_MIN = 0.001; // on hover, lines down to this weight are drawn (all values are listed)
// Sentence pair filters: which side the queries (left) and keys (right) come from.
const PAIRS = [
  ["aa", "A → A"],
  ["ab", "A → B"],
  ["ba", "B → A"],
  ["bb", "B → B"],
];
// Model view: thumbnails sit PAD px in from the canvas edge and GAP px apart, and the selection
// outline (OUTLINE px wide) is drawn in that margin, never over a thumbnail's first row or column.
const GRID_PAD = 4;
const GRID_GAP = 4;
const OUTLINE = 2;
const DETAIL_WIDTH = 420; // the opened head's line view beside the grid: two 120 px columns
const ROW_LABELS = 40;
const MIN_CELL = 24;

// A catalogue template ("Layer {layer}") filled with values; the result only ever reaches
// textContent or a title attribute.
function fmt(template, values) {
  return template.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all));
}

function headColor(h) {
  return PALETTE[h % PALETTE.length];
}

// Rows [lo, hi) of each side of a pair filter, for a pair starting sentence B at `start`.
function pairRanges(pair, start, n) {
  const side = (s) => (s === "a" ? [0, start] : [start, n]);
  if (!pair || pair === "all" || start === null || start === undefined) return [[0, n], [0, n]];
  return [side(pair[0]), side(pair[1])];
}

function parsePayload(bytes) {
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== "ATV1") throw new Error("not an AttnScope view payload");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const base = 8 + headerLength;
  const blobs = {};
  for (const [name, blob] of Object.entries(header.blobs)) {
    const start = base + blob.offset;
    // slice() copies into a fresh, aligned buffer (the payload's own offset may be odd)
    const raw = bytes.slice(start, start + blob.length).buffer;
    const Typed = { u16: Uint16Array, u8: Uint8Array, f32: Float32Array }[blob.dtype];
    blobs[name] = new Typed(raw);
  }
  return { header, blobs };
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function rowHeight(n) {
  if (n <= 40) return 22;
  if (n <= 128) return 18;
  if (n <= 512) return 14;
  if (n <= 1024) return 11;
  return 8;
}

// --- attention access: dense (every weight) or sparse (each row's top keys) --------------------

class LayerWeights {
  constructor(header, blobs, nHeads) {
    this.n = header.seq_len; // queries
    this.m = header.key_len ?? header.seq_len; // keys: the source of cross-attention
    this.nHeads = nHeads;
    this.scale = header.scale;
    this.dense = blobs.weights || blobs.detail || null;
    this.topValues = blobs.top_values || null;
    this.topIndices = blobs.top_indices || null;
    this.k = header.top_k || 0;
    this.rowTop = new Map(); // head -> {idx: Uint16Array(n*K), val: Float32Array(n*K)}
  }

  weight(h, i, j) {
    const n = this.n;
    if (this.dense) return this.dense[(h * n + i) * this.m + j] / this.scale;
    const base = (h * n + i) * this.k;
    for (let r = 0; r < this.k; r++) {
      if (this.topIndices[base + r] === j) return this.topValues[base + r] / this.scale;
    }
    return null; // not among the keys that were sent
  }

  // The K strongest keys in [lo, hi) of every row of head h, largest first.
  top(h, K, lo = 0, hi = this.m) {
    const key = `${h}:${K}:${lo}:${hi}`;
    if (this.rowTop.has(key)) return this.rowTop.get(key);
    const n = this.n;
    const idx = new Int32Array(n * K).fill(-1);
    const val = new Float32Array(n * K);
    for (let i = 0; i < n; i++) {
      const out = i * K;
      if (this.dense) {
        const row = (h * n + i) * this.m;
        for (let j = lo; j < hi; j++) {
          const w = this.dense[row + j];
          if (w === 0 || w <= val[out + K - 1] * this.scale) continue;
          let r = K - 1;
          while (r > 0 && val[out + r - 1] * this.scale < w) {
            val[out + r] = val[out + r - 1];
            idx[out + r] = idx[out + r - 1];
            r--;
          }
          val[out + r] = w / this.scale;
          idx[out + r] = j;
        }
      } else {
        const base = (h * n + i) * this.k;
        let r = 0;
        for (let s = 0; s < this.k && r < K; s++) {
          const j = this.topIndices[base + s];
          if (j < lo || j >= hi) continue;
          idx[out + r] = j;
          val[out + r] = this.topValues[base + s] / this.scale;
          r++;
        }
      }
    }
    const result = { idx, val };
    this.rowTop.set(key, result);
    return result;
  }
}

// --- line view: tokens in two columns, lines weighted by attention ------------------------------

function buildLineView(container, header, weights, heads, ui, onHeadClick, geometry, fileName) {
  const n = header.seq_len; // queries, on the left
  const tokens = header.tokens;
  const keyTokens = header.key_tokens || tokens; // keys, on the right
  const m = keyTokens.length;
  const rows = Math.max(n, m);
  const rowH = rowHeight(rows);
  const { col: colWidth, canvas: canvasWidth } = geometry || { col: 160, canvas: 320 };
  const start = header.sentence_b_start;
  const isPair = typeof start === "number" && start > 0 && start < n;

  const controls = el("div", "atv-controls");
  const swatches = el("div", "atv-swatches");
  heads.forEach((h) => {
    const swatch = el("button", "atv-swatch");
    swatch.type = "button";
    swatch.style.background = headColor(h);
    swatch.dataset.head = String(h);
    swatch.title = fmt(header.strings.swatch, { head: h });
    if (!ui.visible.has(h)) swatch.classList.add("atv-off");
    swatch.addEventListener("click", () => {
      if (ui.visible.has(h)) ui.visible.delete(h);
      else ui.visible.add(h);
      swatch.classList.toggle("atv-off", !ui.visible.has(h));
      draw(null);
      if (onHeadClick) onHeadClick(h);
    });
    swatch.addEventListener("dblclick", () => {
      ui.visible = new Set([h]);
      swatches.querySelectorAll(".atv-swatch").forEach((s) => {
        s.classList.toggle("atv-off", Number(s.dataset.head) !== h);
      });
      draw(null);
    });
    swatches.appendChild(swatch);
  });
  controls.appendChild(swatches);

  const topLabel = el("label", "atv-control", `${header.strings.top_keys} `);
  const topSelect = el("select", "atv-topk");
  TOP_K_CHOICES.forEach((k) => {
    const option = el("option", null, String(k));
    option.value = String(k);
    if (k === ui.topK) option.selected = true;
    topSelect.appendChild(option);
  });
  topSelect.addEventListener("change", () => {
    ui.topK = Number(topSelect.value);
    draw(null);
  });
  topLabel.appendChild(topSelect);
  controls.appendChild(topLabel);

  const thresholdLabel = el("label", "atv-control", `${header.strings.hide_below} `);
  const threshold = el("input", "atv-threshold");
  threshold.type = "range";
  threshold.min = "0";
  threshold.max = "0.5";
  threshold.step = "0.01";
  threshold.value = String(ui.threshold);
  const thresholdValue = el("span", "atv-threshold-value", ui.threshold.toFixed(2));
  threshold.addEventListener("input", () => {
    ui.threshold = Number(threshold.value);
    thresholdValue.textContent = ui.threshold.toFixed(2);
    draw(null);
  });
  thresholdLabel.appendChild(threshold);
  thresholdLabel.appendChild(thresholdValue);
  controls.appendChild(thresholdLabel);
  if (isPair) {
    const pairLabel = el("label", "atv-control", `${header.strings.sentences} `);
    const pairSelect = el("select", "atv-pairs");
    [["all", header.strings.pairs_all], ...PAIRS].forEach(([value, label]) => {
      const option = el("option", null, label);
      option.value = value;
      if (value === ui.pair) option.selected = true;
      pairSelect.appendChild(option);
    });
    pairSelect.addEventListener("change", () => {
      ui.pair = pairSelect.value;
      applyDim();
      draw(null);
    });
    pairLabel.appendChild(pairSelect);
    controls.appendChild(pairLabel);
  }
  if (weights.topIndices) {
    controls.appendChild(
      el("span", "atv-note", fmt(header.strings.sparse_note, { k: weights.k }))
    );
  }
  // Shift-clicked queries: kept in `ui` (they survive a change of layer), positions of this text.
  ui.selection = new Set([...(ui.selection || [])].filter((i) => i < n));
  ui.aggregate = ui.aggregate === "mean" ? "mean" : "sum";
  const selectionBox = el("span", "atv-selection");
  const selectionText = el("span", "atv-selection-count");
  const aggregate = el("select", "atv-aggregate");
  [
    ["sum", header.strings.selection_sum],
    ["mean", header.strings.selection_mean],
  ].forEach(([value, label]) => {
    const option = el("option", null, label);
    option.value = value;
    if (value === ui.aggregate) option.selected = true;
    aggregate.appendChild(option);
  });
  aggregate.addEventListener("change", () => {
    ui.aggregate = aggregate.value;
    draw(null);
  });
  const clear = el("button", "atv-selection-clear", header.strings.selection_clear);
  clear.type = "button";
  clear.addEventListener("click", () => {
    ui.selection.clear();
    showSelection();
    draw(null);
  });
  selectionBox.append(selectionText, aggregate, clear);
  controls.appendChild(selectionBox);
  container.appendChild(controls);
  const name = fileName || "attnscope-view";
  const fontPx = Math.max(7, Math.min(14, rowH - 5));
  let drawn = []; // [head, query, key, alpha, width, weight] of every line on the canvas now
  let drawnMode = "all"; // "all" rows, one "query" or "key" hovered, or the "selection"
  // What is drawn, for tests and embedders: the mode, the selected queries, how they combine,
  // and every line as {head, query, key, weight}.
  container.attnscopeDrawing = () => ({
    mode: drawnMode,
    selection: [...ui.selection].sort((a, b) => a - b),
    aggregate: ui.aggregate,
    lines: drawn.map(([head, query, key, , , weight]) => ({ head, query, key, weight })),
  });
  const scene = () => ({
    tokens,
    keys: keyTokens,
    col: colWidth,
    lineWidth: canvasWidth,
    rowH,
    font: fontPx,
    dimLeft: (i) => leftLabels[i].classList.contains("atv-dim"),
    dimRight: (j) => rightLabels[j].classList.contains("atv-dim"),
    lines: drawn,
  });
  controls.appendChild(
    saveButtons(
      header.strings,
      () => lineViewPng(scene(), canvas, ratio, `${name}.png`),
      () => lineViewSvg(scene(), `${name}.svg`)
    )
  );

  const scroller = el("div", "atv-scroller");
  const body = el("div", "atv-lines");
  body.style.height = `${rows * rowH}px`;
  body.style.minWidth = `${2 * colWidth + canvasWidth}px`;
  body.style.setProperty("--atv-col", `${colWidth}px`);
  body.style.setProperty("--atv-row", `${rowH}px`);
  body.style.setProperty("--atv-font", `${fontPx}px`);
  const left = el("div", "atv-col atv-left");
  const right = el("div", "atv-col atv-right");
  const canvas = el("canvas", "atv-canvas");
  const ratio = Math.min(window.devicePixelRatio || 1, rows > 1024 ? 1 : 2);
  canvas.width = canvasWidth * ratio;
  canvas.height = rows * rowH * ratio;
  canvas.style.width = `${canvasWidth}px`;
  canvas.style.height = `${rows * rowH}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);

  const leftLabels = [];
  const rightLabels = [];
  for (let i = 0; i < n; i++) {
    const a = el("div", "atv-token");
    a.appendChild(el("span", "atv-weight"));
    a.appendChild(el("span", "atv-text", tokens[i]));
    a.title = `${i}: ${tokens[i]} (${header.strings.query})`;
    a.dataset.pos = String(i);
    if (header.sentence_b_start === i) a.classList.add("atv-pair-start");
    leftLabels.push(a);
    left.appendChild(a);
  }
  for (let j = 0; j < m; j++) {
    const b = el("div", "atv-token");
    b.appendChild(el("span", "atv-text", keyTokens[j]));
    b.appendChild(el("span", "atv-weight"));
    b.title = `${j}: ${keyTokens[j]} (${header.strings.key})`;
    b.dataset.pos = String(j);
    if (header.sentence_b_start === j) b.classList.add("atv-pair-start");
    rightLabels.push(b);
    right.appendChild(b);
  }
  body.appendChild(left);
  body.appendChild(canvas);
  body.appendChild(right);
  scroller.appendChild(body);
  container.appendChild(scroller);

  const y = (i) => (i + 0.5) * rowH;
  // [lo, hi) of the queries and of the keys the pair filter lets through (everything: no pair)
  const ranges = () =>
    isPair
      ? pairRanges(ui.pair, start, n)
      : [
          [0, n],
          [0, m],
        ];

  function applyDim() {
    const [[qLo, qHi], [kLo, kHi]] = ranges();
    leftLabels.forEach((label, i) => label.classList.toggle("atv-dim", i < qLo || i >= qHi));
    rightLabels.forEach((label, j) => label.classList.toggle("atv-dim", j < kLo || j >= kHi));
  }

  function clearWeights() {
    for (const label of leftLabels) {
      label.firstChild.textContent = "";
      label.classList.remove("atv-hover");
    }
    for (const label of rightLabels) {
      label.lastChild.textContent = "";
      label.classList.remove("atv-hover");
    }
  }

  function line(h, i, j, w) {
    ctx.strokeStyle = headColor(h);
    ctx.globalAlpha = Math.min(1, 0.15 + 0.85 * w);
    ctx.lineWidth = w > 0.5 ? 2 : 1;
    drawn.push([h, i, j, ctx.globalAlpha, ctx.lineWidth, w]);
    ctx.beginPath();
    ctx.moveTo(0, y(i));
    ctx.lineTo(canvasWidth, y(j));
    ctx.stroke();
  }

  // focus: null (every row), {query: i} or {key: j}
  function draw(focus) {
    const started = performance.now();
    ctx.clearRect(0, 0, canvasWidth, rows * rowH);
    drawn = [];
    clearWeights();
    const visible = heads.filter((h) => ui.visible.has(h));
    const [[qLo, qHi], [kLo, kHi]] = ranges();
    let lines = 0;
    drawnMode = focus === null ? "all" : focus.query !== undefined ? "query" : "key";
    if (focus === null && ui.selection.size > 0) {
      drawnMode = "selection";
      lines = drawSelection(visible, qLo, qHi, kLo, kHi);
    } else if (focus === null) {
      for (const h of visible) {
        const { idx, val } = weights.top(heads.indexOf(h), ui.topK, kLo, kHi);
        ctx.strokeStyle = headColor(h);
        // bucket by opacity: one stroke per bucket keeps tens of thousands of lines fast
        for (let bucket = 9; bucket >= 0; bucket--) {
          ctx.globalAlpha = 0.1 + bucket * 0.09;
          ctx.lineWidth = bucket >= 5 ? 2 : 1;
          ctx.beginPath();
          for (let i = qLo; i < qHi; i++) {
            for (let r = 0; r < ui.topK; r++) {
              const w = val[i * ui.topK + r];
              const j = idx[i * ui.topK + r];
              if (j < 0 || w < ui.threshold) break;
              if (Math.min(9, Math.floor(w * 10)) !== bucket) continue;
              ctx.moveTo(0, y(i));
              ctx.lineTo(canvasWidth, y(j));
              drawn.push([h, i, j, ctx.globalAlpha, ctx.lineWidth, w]);
              lines++;
            }
          }
          ctx.stroke();
        }
      }
    } else {
      const sums = new Float64Array(rows);
      const counts = new Uint16Array(rows);
      const other = focus.query !== undefined ? focus.query : focus.key;
      (focus.query !== undefined ? leftLabels : rightLabels)[other].classList.add("atv-hover");
      // a hovered query lists the keys the filter lets through, a hovered key those queries
      const [ownLo, ownHi] = focus.query !== undefined ? [qLo, qHi] : [kLo, kHi];
      const [lo, hi] = focus.query !== undefined ? [kLo, kHi] : [qLo, qHi];
      for (const h of other >= ownLo && other < ownHi ? visible : []) {
        const slot = heads.indexOf(h);
        for (let t = lo; t < hi; t++) {
          const w =
            focus.query !== undefined ? weights.weight(slot, other, t) : weights.weight(slot, t, other);
          if (w === null) continue;
          sums[t] += w;
          counts[t] += 1;
          if (w >= HOVER_MIN) {
            if (focus.query !== undefined) line(h, other, t, w);
            else line(h, t, other, w);
            lines++;
          }
        }
      }
      const labels = focus.query !== undefined ? rightLabels : leftLabels;
      for (let t = 0; t < labels.length; t++) {
        if (counts[t] === 0) continue;
        const mean = sums[t] / counts[t];
        const span = focus.query !== undefined ? labels[t].lastChild : labels[t].firstChild;
        span.textContent = mean >= 0.0005 ? mean.toFixed(3) : "";
        labels[t].dataset.weight = String(mean);
      }
    }
    ctx.globalAlpha = 1;
    container.dataset.lines = String(lines);
    container.dataset.drawMs = String(Math.round(performance.now() - started));
  }

  // The selected queries' rows, summed (or their mean) per head and key: a line from each
  // selected query to every key whose combined weight is at least HOVER_MIN, and beside each key
  // its combined weight averaged over the visible heads.
  function drawSelection(visible, qLo, qHi, kLo, kHi) {
    const queries = [...ui.selection].filter((i) => i >= qLo && i < qHi).sort((a, b) => a - b);
    const sums = new Float64Array(m);
    const counts = new Uint16Array(m);
    let lines = 0;
    queries.forEach((i) => leftLabels[i].classList.add("atv-hover"));
    for (const h of queries.length ? visible : []) {
      const slot = heads.indexOf(h);
      for (let t = kLo; t < kHi; t++) {
        let total = 0;
        let seen = 0;
        for (const i of queries) {
          const w = weights.weight(slot, i, t);
          if (w === null) continue; // a long input's weak key, not sent: counts as 0
          total += w;
          seen++;
        }
        if (seen === 0) continue;
        const value = ui.aggregate === "mean" ? total / queries.length : total;
        sums[t] += value;
        counts[t] += 1;
        if (value < HOVER_MIN) continue;
        for (const i of queries) {
          line(h, i, t, value);
          lines++;
        }
      }
    }
    for (let t = 0; t < m; t++) {
      if (counts[t] === 0) continue;
      const shown = sums[t] / counts[t];
      rightLabels[t].lastChild.textContent = shown >= 0.0005 ? shown.toFixed(3) : "";
      rightLabels[t].dataset.weight = String(shown);
    }
    return lines;
  }

  function showSelection() {
    leftLabels.forEach((label, i) => label.classList.toggle("atv-selected", ui.selection.has(i)));
    selectionBox.hidden = ui.selection.size === 0;
    selectionText.textContent = fmt(header.strings.selection_count, { count: ui.selection.size });
  }

  leftLabels.forEach((label, i) => {
    label.addEventListener("mouseenter", () => draw({ query: i }));
    label.addEventListener("mouseleave", () => draw(null));
    // Shift-click adds (or removes) this query; a plain click does what it always did: nothing.
    label.addEventListener("mousedown", (event) => {
      if (event.shiftKey) event.preventDefault(); // no text selection on shift-click
    });
    label.addEventListener("click", (event) => {
      if (!event.shiftKey) return;
      if (ui.selection.has(i)) ui.selection.delete(i);
      else ui.selection.add(i);
      showSelection();
      draw(null);
    });
  });
  rightLabels.forEach((label, j) => {
    label.addEventListener("mouseenter", () => draw({ key: j }));
    label.addEventListener("mouseleave", () => draw(null));
  });
  applyDim();
  showSelection();
  draw(null);
  return { draw };
}

// --- model view: every layer x head as a thumbnail --------------------------------------------

function viridisLike(v) {
  // white -> blue, matching the heatmaps' "Blues" scale
  const r = Math.round(247 - 239 * v);
  const g = Math.round(251 - 203 * v);
  const b = Math.round(255 - 148 * v);
  return [r, g, b];
}

// Where the opened head goes: beside the grid when both fit in `width` (thumbnails of at least
// MIN_CELL px), else under it. Returns the thumbnail size too.
function modelLayout(width, nHeads, withDetail) {
  const pitch = (room) => Math.floor((room - ROW_LABELS - 2 * GRID_PAD) / nHeads);
  const besideRoom = width - DETAIL_WIDTH - 24;
  const beside = withDetail && pitch(besideRoom) - GRID_GAP >= MIN_CELL;
  const room = beside ? besideRoom : width;
  const cell = Math.max(MIN_CELL, Math.min(72, pitch(room) - GRID_GAP));
  return { beside, cell };
}

// A thumbnail's width and height in px: `cell` square for self-attention; for cross-attention
// (T_q queries x T_k keys) the longer side is `cell` and the other follows T_q : T_k.
function cellShape(header, cell) {
  const n = header.seq_len;
  const m = header.key_len ?? n;
  if (n === m) return [cell, cell];
  const short = (a, b) => Math.max(6, Math.round((cell * a) / b));
  return n > m ? [short(m, n), cell] : [cell, short(n, m)];
}

function buildModelView(container, header, blobs, setSelected, cell, fileName) {
  const nLayers = header.n_layers;
  const nHeads = header.n_heads;
  const thumbs = blobs.thumbnails;
  const [sq, sk] = header.blobs.thumbnails.shape.slice(2); // pooled queries x keys
  const [cellW, cellH] = cellShape(header, cell);
  const gap = GRID_GAP;
  const pad = GRID_PAD;
  const x = (h) => pad + h * (cellW + gap);
  const y = (l) => pad + l * (cellH + gap);

  const grid = el("div", "atv-grid");
  const canvas = el("canvas", "atv-thumbs");
  const width = 2 * pad + nHeads * (cellW + gap) - gap;
  const height = 2 * pad + nLayers * (cellH + gap) - gap;
  canvas.width = width;
  canvas.height = height;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  // the geometry, for tests and anyone reading pixels back
  canvas.dataset.cell = String(cellW);
  canvas.dataset.cellHeight = String(cellH);
  canvas.dataset.gap = String(gap);
  canvas.dataset.pad = String(pad);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  const tile = document.createElement("canvas");
  tile.width = sk;
  tile.height = sq;
  const tileCtx = tile.getContext("2d");
  const image = tileCtx.createImageData(sk, sq);
  for (let l = 0; l < nLayers; l++) {
    for (let h = 0; h < nHeads; h++) {
      const base = (l * nHeads + h) * sq * sk;
      for (let p = 0; p < sq * sk; p++) {
        const [r, g, b] = viridisLike(thumbs[base + p] / 255);
        image.data[p * 4] = r;
        image.data[p * 4 + 1] = g;
        image.data[p * 4 + 2] = b;
        image.data[p * 4 + 3] = 255;
      }
      tileCtx.putImageData(image, 0, 0);
      ctx.drawImage(tile, x(h), y(l), cellW, cellH);
    }
  }
  if (header.selected) {
    const [l, h] = header.selected;
    // A stroke is centred on its path: this one covers [x - 3, x - 1] around the thumbnail, in
    // the padding and the gaps, so the first key column ([CLS], the sink) stays visible.
    ctx.strokeStyle = "#d62728";
    ctx.lineWidth = OUTLINE;
    const off = OUTLINE / 2 + 1;
    ctx.strokeRect(x(h) - off, y(l) - off, cellW + 2 * off, cellH + 2 * off);
  }

  const columns = el("div", "atv-axis atv-columns");
  columns.style.width = `${width}px`;
  columns.style.paddingLeft = `${pad}px`;
  for (let h = 0; h < nHeads; h++) {
    const label = el("span", null, `H${h}`);
    label.style.width = `${cellW + gap}px`;
    columns.appendChild(label);
  }
  const rows = el("div", "atv-axis atv-rows");
  rows.style.paddingTop = `${pad}px`;
  for (let l = 0; l < nLayers; l++) {
    const label = el("span", null, `L${l}`);
    label.style.height = `${cellH + gap}px`;
    label.style.lineHeight = `${cellH}px`;
    rows.appendChild(label);
  }
  const tooltip = el("div", "atv-tooltip");
  tooltip.hidden = true;

  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    const h = Math.floor((event.clientX - box.left - pad + gap / 2) / (cellW + gap));
    const l = Math.floor((event.clientY - box.top - pad + gap / 2) / (cellH + gap));
    return l >= 0 && l < nLayers && h >= 0 && h < nHeads ? [l, h] : null;
  };
  canvas.addEventListener("mousemove", (event) => {
    const hit = at(event);
    if (!hit) {
      tooltip.hidden = true;
      return;
    }
    const [l, h] = hit;
    const entropy = header.head_entropy[l][h];
    const normalized = header.normalized_head_entropy[l][h];
    tooltip.textContent = fmt(header.strings.tooltip, {
      layer: l,
      head: h,
      entropy: entropy.toFixed(3),
      normalized: normalized.toFixed(2),
    });
    tooltip.hidden = false;
  });
  canvas.addEventListener("mouseleave", () => {
    tooltip.hidden = true;
  });
  canvas.addEventListener("click", (event) => {
    const hit = at(event);
    if (hit) setSelected(hit[0], hit[1]);
  });

  const frame = el("div", "atv-grid-frame");
  frame.appendChild(el("div", "atv-corner"));
  frame.appendChild(columns);
  frame.appendChild(rows);
  frame.appendChild(canvas);
  grid.appendChild(frame);
  const picture = { canvas, nLayers, nHeads, x, y, cell: cellW, cellH };
  const save = el("div", "atv-controls");
  save.appendChild(
    saveButtons(
      header.strings,
      () => modelGridPng(picture, `${fileName}.png`),
      () => modelGridSvg(picture, `${fileName}.svg`)
    )
  );
  container.appendChild(save);
  const scroll = el("div", "atv-grid-scroll"); // many layers scroll here, not down the page
  scroll.appendChild(grid);
  container.appendChild(scroll);
  container.appendChild(tooltip);
}

// Column and canvas widths of a line view that is `width` px wide.
function lineGeometry(width) {
  const col = Math.max(96, Math.min(160, Math.floor((width - 180) / 2)));
  return { col, canvas: Math.max(160, Math.min(320, width - 2 * col)) };
}

// --- entry point --------------------------------------------------------------------------------

// Draws `data` (the payload bytes) into `parentElement`; a clicked head goes to
// setStateValue("selected", {layer, head}). The module's export is added by an entry file:
// streamlit_entry.js for the app's component, notebook_widget.js for the Jupyter widget.
function drawAttentionView(component) {
  const { data, parentElement, setStateValue } = component;
  if (!data) return;
  let root = parentElement.querySelector(".atv-root");
  if (!root) {
    root = el("div", "atv-root");
    parentElement.appendChild(root);
  }
  const started = performance.now();
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  let parsed;
  try {
    parsed = parsePayload(bytes);
  } catch (error) {
    root.textContent = `Cannot draw this view (AttnScope payload): ${error.message}`;
    return;
  }
  const { header, blobs } = parsed;
  if (root.dataset.viewId === header.view_id) return; // same data: keep what is drawn
  root.dataset.viewId = header.view_id;
  root.dataset.state = "drawing";
  root.replaceChildren();
  const ui = root.__ui || {
    visible: null,
    topK: header.seq_len > 256 ? 3 : 5,
    threshold: 0.05,
    pair: "all",
  };
  root.__ui = ui;
  const select = (layer, head) => setStateValue("selected", { layer, head });

  if (header.mode === "head") {
    const heads = Array.from({ length: header.n_heads }, (_, h) => h);
    if (!ui.visible || ui.visibleFor !== header.n_heads) {
      ui.visible = new Set(heads);
      ui.visibleFor = header.n_heads;
    }
    const title = el(
      "div",
      "atv-title",
      fmt(header.strings.layer_heads, { layer: header.layer, heads: header.n_heads })
    );
    root.appendChild(title);
    const view = el("div", "atv-view");
    root.appendChild(view);
    const weights = new LayerWeights(header, blobs, header.n_heads);
    const onHead = (h) => select(header.layer, h);
    const name = `attnscope-head-view-layer${header.layer}`;
    buildLineView(view, header, weights, heads, ui, onHead, null, name);
  } else if (header.mode === "model") {
    const withDetail = Boolean(header.selected && blobs.detail);
    const width = root.clientWidth || parentElement.clientWidth || 900;
    const { beside, cell } = modelLayout(width, header.n_heads, withDetail);
    root.dataset.placement = withDetail ? (beside ? "beside" : "below") : "none";
    if (withDetail) {
      const [layer, head] = header.selected;
      const where = beside ? header.strings.opened_beside : header.strings.opened_below;
      root.appendChild(el("div", "atv-opened", fmt(where, { layer, head })));
    }
    const layout = el("div", beside ? "atv-model atv-beside" : "atv-model");
    root.appendChild(layout);
    const gridBox = el("div", "atv-model-grid");
    layout.appendChild(gridBox);
    const clicked = (layer, head) => {
      root.__scrollToDetail = true;
      select(layer, head);
    };
    buildModelView(gridBox, header, blobs, clicked, cell, "attnscope-model-view");
    if (withDetail) {
      const [layer, head] = header.selected;
      const detail = el("div", "atv-model-detail");
      detail.appendChild(el("div", "atv-title", fmt(header.strings.layer_head, { layer, head })));
      layout.appendChild(detail);
      const detailUi = {
        visible: new Set([head]),
        topK: ui.topK,
        threshold: ui.threshold,
        pair: ui.pair,
      };
      const geometry = lineGeometry(beside ? DETAIL_WIDTH : width);
      const weights = new LayerWeights(header, blobs, 1);
      const name = `attnscope-layer${layer}-head${head}`;
      buildLineView(detail, header, weights, [head], detailUi, null, geometry, name);
      // opened by a click and drawn under the grid: bring it into view
      if (root.__scrollToDetail && !beside) detail.scrollIntoView({ block: "nearest" });
    }
    root.__scrollToDetail = false;
  } else if (header.mode === "neuron") {
    buildNeuronView(root, header, blobs);
  }
  root.dataset.state = "drawn";
  root.dataset.renderMs = String(Math.round(performance.now() - started));
}
