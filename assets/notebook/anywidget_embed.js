// Draws a notebook's anywidgets in an exported HTML file, offline: the page's widget state
// (application/vnd.jupyter.widget-state+json) holds each widget's ES module (_esm), CSS and
// traits, buffers in base64; each widget output (application/vnd.jupyter.widget-view+json)
// names its model. This stands in for @jupyter-widgets/html-manager, which nbconvert loads from a
// CDN, for anywidgets only: a model here answers get/set/on/off/save_changes, with no kernel.
// Inlined as a module script by viz/notebook_html.py.

const STATE_TYPE = "application/vnd.jupyter.widget-state+json";
const VIEW_TYPE = "application/vnd.jupyter.widget-view+json";

function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return new DataView(bytes.buffer);
}

// The model's traits with each buffer put back at its path (as ipywidgets does).
function traits(entry) {
  const state = structuredClone(entry.state || {});
  for (const buffer of entry.buffers || []) {
    let target = state;
    buffer.path.slice(0, -1).forEach((key) => {
      target = target[key];
    });
    target[buffer.path[buffer.path.length - 1]] = fromBase64(buffer.data);
  }
  return state;
}

function makeModel(state) {
  const listeners = new Map();
  const emit = (name) => (listeners.get(name) || []).slice().forEach((callback) => callback());
  return {
    get: (key) => state[key],
    set(key, value) {
      const changed = state[key] !== value;
      state[key] = value;
      if (changed) emit(`change:${key}`);
    },
    on(name, callback) {
      if (!listeners.has(name)) listeners.set(name, []);
      listeners.get(name).push(callback);
    },
    off(name, callback) {
      const list = listeners.get(name) || [];
      if (callback) list.splice(list.indexOf(callback) >>> 0, 1);
      else listeners.delete(name);
    },
    save_changes() {},
    send() {},
    widget_manager: {},
  };
}

const modules = new Map();
function loadModule(esm) {
  if (!modules.has(esm)) {
    const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
    modules.set(esm, import(url));
  }
  return modules.get(esm);
}

function addCss(css, id) {
  if (!css || document.querySelector(`style[data-anywidget="${CSS.escape(id)}"]`)) return;
  const style = document.createElement("style");
  style.dataset.anywidget = id;
  style.textContent = css;
  document.head.appendChild(style);
}

async function drawAll() {
  const stateNode = document.querySelector(`script[type="${STATE_TYPE}"]`);
  const all = stateNode ? JSON.parse(stateNode.textContent).state : {};
  const models = new Map();
  for (const node of document.querySelectorAll(`script[type="${VIEW_TYPE}"]`)) {
    const id = JSON.parse(node.textContent).model_id;
    const entry = all[id];
    const el = document.createElement("div");
    el.className = "anywidget-view";
    node.after(el);
    if (!entry || !entry.state || !entry.state._esm) {
      el.textContent = "(a widget that only a running kernel can show)";
      continue;
    }
    if (!models.has(id)) models.set(id, makeModel(traits(entry)));
    const model = models.get(id);
    addCss(model.get("_css"), model.get("_anywidget_id") || id);
    const mod = await loadModule(model.get("_esm"));
    const widget = typeof mod.default === "function" ? await mod.default() : mod.default;
    if (widget.initialize) await widget.initialize({ model });
    await widget.render({ model, el });
    el.dataset.rendered = "true";
  }
  document.body.dataset.widgetsDrawn = String(models.size);
}

drawAll().catch((error) => {
  document.body.dataset.widgetsError = String(error);
  throw error;
});
