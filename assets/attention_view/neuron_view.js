// AttnScope neuron view (BertViz's, drawn on canvas): for one query token and head, the query
// vector q, every key vector k_j, their elementwise product q × k_j, and the score
// s_j = sum(q × k_j) · scaling (+ mask) with its softmax, the attention row. Read from the payload
// made by viz/attention_view.py encode_neuron_view (float32 blobs query, keys, products, scores,
// probabilities). Loaded before attention_view.js, whose helpers (el, fmt, rowHeight) it uses.

const NEURON_POSITIVE = [31, 119, 180]; // blue, as the heatmaps
const NEURON_NEGATIVE = [255, 127, 14]; // orange
const NEURON_GAP = 12; // px between the k block and the q × k block

// White for 0, blue for +limit, orange for -limit.
function divergingColor(value, limit) {
  const t = Math.min(1, Math.abs(value) / (limit || 1));
  const [r, g, b] = value >= 0 ? NEURON_POSITIVE : NEURON_NEGATIVE;
  const mix = (c) => Math.round(255 - (255 - c) * t);
  return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
}

function maxAbs(values) {
  let m = 0;
  for (let i = 0; i < values.length; i++) if (Math.abs(values[i]) > m) m = Math.abs(values[i]);
  return m;
}

function buildNeuronView(root, header, blobs) {
  const n = header.seq_len;
  const d = header.head_dim;
  const q = header.query_pos;
  const strings = header.strings;
  const tokens = header.tokens;
  const { query, keys, products, scores, probabilities } = blobs;
  const rowH = Math.max(12, rowHeight(n));
  const cell = Math.max(2, Math.min(8, Math.floor(256 / d)));
  const block = cell * d;
  const vectorLimit = Math.max(maxAbs(query), maxAbs(keys)); // q and k share one scale
  const productLimit = maxAbs(products);

  root.appendChild(
    el(
      "div",
      "atv-title atv-neuron-title",
      fmt(strings.neuron_title, {
        layer: header.layer,
        head: header.head,
        query: `${q}: ${tokens[q]}`,
      })
    )
  );
  const notes = [fmt(strings.neuron_legend, { scaling: header.scaling.toFixed(4), d })];
  if (header.n_kv_heads < header.n_heads) {
    notes.push(
      fmt(strings.neuron_gqa, {
        head: header.head,
        kv_head: header.kv_head,
        group: header.n_heads / header.n_kv_heads,
      })
    );
  }
  if (header.rotary) notes.push(strings.neuron_rotary);
  notes.forEach((text) => root.appendChild(el("div", "atv-neuron-note", text)));

  const view = el("div", "atv-neuron");
  view.style.setProperty("--atv-row", `${rowH}px`);
  view.style.setProperty("--atv-font", `${Math.max(7, Math.min(14, rowH - 5))}px`);

  // The query row: its token, then q drawn over the k block it is multiplied with.
  const head = el("div", "atv-neuron-head");
  const queryLabel = el("div", "atv-neuron-token atv-hover", tokens[q]);
  queryLabel.title = `${q}: ${tokens[q]} (${strings.query})`;
  head.appendChild(queryLabel);
  const qCanvas = el("canvas", "atv-neuron-q");
  qCanvas.width = block;
  qCanvas.height = rowH;
  qCanvas.dataset.cell = String(cell);
  const qCtx = qCanvas.getContext("2d");
  for (let k = 0; k < d; k++) {
    qCtx.fillStyle = divergingColor(query[k], vectorLimit);
    qCtx.fillRect(k * cell, 0, cell, rowH - 2);
  }
  qCanvas.title = strings.neuron_q;
  head.appendChild(qCanvas);
  view.appendChild(head);

  const columns = el("div", "atv-neuron-columns");
  columns.appendChild(el("span", "atv-neuron-token", strings.key));
  const kTitle = el("span", null, strings.neuron_k);
  kTitle.style.width = `${block + NEURON_GAP}px`;
  columns.appendChild(kTitle);
  const pTitle = el("span", null, strings.neuron_qk);
  pTitle.style.width = `${block}px`;
  columns.appendChild(pTitle);
  columns.appendChild(el("span", "atv-score", strings.neuron_score));
  columns.appendChild(el("span", "atv-prob", strings.neuron_softmax));
  view.appendChild(columns);

  const scroller = el("div", "atv-scroller");
  const body = el("div", "atv-neuron-body");
  const labels = el("div", "atv-neuron-labels");
  const kCanvas = el("canvas", "atv-neuron-k");
  kCanvas.width = 2 * block + NEURON_GAP;
  kCanvas.height = n * rowH;
  kCanvas.dataset.cell = String(cell);
  const kCtx = kCanvas.getContext("2d");
  const numbers = el("div", "atv-neuron-numbers");
  for (let j = 0; j < n; j++) {
    const masked = !Number.isFinite(scores[j]);
    for (let k = 0; k < d; k++) {
      kCtx.fillStyle = divergingColor(keys[j * d + k], vectorLimit);
      kCtx.fillRect(k * cell, j * rowH + 1, cell, rowH - 2);
      kCtx.fillStyle = masked ? "#eeeeee" : divergingColor(products[j * d + k], productLimit);
      kCtx.fillRect(block + NEURON_GAP + k * cell, j * rowH + 1, cell, rowH - 2);
    }
    const label = el("div", "atv-neuron-token", tokens[j]);
    label.title = `${j}: ${tokens[j]} (${strings.key})`;
    const row = el("div", "atv-neuron-row");
    row.dataset.key = String(j);
    row.dataset.score = String(scores[j]);
    row.dataset.prob = String(probabilities[j]);
    row.appendChild(el("span", "atv-score", masked ? strings.neuron_masked : scores[j].toFixed(2)));
    const prob = el("span", "atv-prob", probabilities[j].toFixed(3));
    prob.style.setProperty("--atv-share", `${Math.round(probabilities[j] * 100)}%`);
    row.appendChild(prob);
    if (masked) {
      label.classList.add("atv-dim");
      row.classList.add("atv-dim");
    }
    if (j === q) label.classList.add("atv-hover");
    labels.appendChild(label);
    numbers.appendChild(row);
  }
  kCanvas.addEventListener("mousemove", (event) => {
    const box = kCanvas.getBoundingClientRect();
    const j = Math.floor((event.clientY - box.top) / rowH);
    const x = event.clientX - box.left;
    const product = x >= block + NEURON_GAP;
    const k = Math.floor((product ? x - block - NEURON_GAP : x) / cell);
    if (j < 0 || j >= n || k < 0 || k >= d) return;
    kCanvas.title = fmt(strings.neuron_cell, {
      key: `${j}: ${tokens[j]}`,
      dim: k,
      q: query[k].toFixed(3),
      k: keys[j * d + k].toFixed(3),
      qk: products[j * d + k].toFixed(3),
    });
  });
  body.appendChild(labels);
  body.appendChild(kCanvas);
  body.appendChild(numbers);
  scroller.appendChild(body);
  view.appendChild(scroller);
  root.appendChild(view);
}
