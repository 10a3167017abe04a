// tfrec serve page: a plain client of the REST API (no framework, no build step).
// GET tfrec/v1/models lists the models; the catalog and titles endpoints give titles;
// POST v1/models/{name}:predict (columnar "inputs") recommends and finds similar items.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const state = { models: [], limits: {}, history: [], searchSeq: 0, runSeq: 0, similarSeq: 0 };
  // recommend needs a non-empty user id: without one the page sends this unknown id, so the
  // model scores the history alone (or falls back to popularity when there is none)
  const ANONYMOUS = "(anonymous)";

  // ------------------------------------------------------------------ helpers
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child); // strings become text nodes
    return node;
  }

  // TF Serving writes non-finite floats as bare NaN / Infinity / -Infinity, which JSON.parse
  // refuses: quote them (outside strings) first; scores are read back with Number().
  function parseJSON(text) {
    return JSON.parse(text.replace(/"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g, (m) => (m[0] === '"' ? m : `"${m}"`)));
  }

  async function api(path, body) {
    const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new Error(`${path}: no answer from the server (${error.message})`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = parseJSON(text);
    } catch {
      // not JSON: reported below
    }
    if (!response.ok || data === null) {
      const message = data && typeof data.error === "string" ? data.error : text.slice(0, 300) || response.statusText;
      throw new Error(`${response.status}: ${message}`);
    }
    return data;
  }

  const predict = (name, body) => api(`v1/models/${enc(name)}:predict`, body);

  async function titlesOf(name, ids) {
    const unique = [...new Set(ids.filter((id) => id !== ""))];
    const titles = new Map();
    for (let start = 0; start < unique.length; start += 500) {
      const query = unique.slice(start, start + 500).map((id) => `id=${enc(id)}`).join("&");
      const data = await api(`tfrec/v1/models/${enc(name)}/titles?${query}`);
      for (const item of data.items) titles.set(item.item_id, item.title);
    }
    return titles;
  }

  const number = (n) => (n === null || n === undefined ? "?" : Number(n).toLocaleString("en"));
  const score = (s) => (Number.isInteger(s) ? String(s) : Math.abs(s) >= 1e4 ? s.toExponential(2) : Math.abs(s) >= 100 ? s.toFixed(1) : s.toFixed(3));
  const errorBox = (message) => el("p", { class: "error", role: "alert", text: message });
  const hint = (text) => el("p", { class: "hint", text });
  const selected = () => state.models.filter((m) => $(`model-${m.name}`)?.checked);
  const byName = (name) => state.models.find((m) => m.name === name);

  function showFormError(message) {
    const box = $("form-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function trainedOn(model) {
    const parts = [];
    if (model.model && model.model !== model.name) parts.push(model.model);
    const record = model.trained_on;
    const where = record && record.data ? ` ${record.data}${record.split ? ` (${record.split})` : ""}:` : "";
    parts.push(`trained on${where} ${number(model.n_users)} users × ${number(model.n_items)} items`);
    if (record && record.trained_at) parts.push(record.trained_at.slice(0, 10));
    return parts.join(" · ");
  }

  function columnHead(model, level = "h2") {
    const config = model.config ? Object.entries(model.config).filter(([, v]) => v !== null).map(([k, v]) => `${k}=${v}`).join(", ") : "";
    return [
      el(level, {}, model.name, el("span", { class: "badge", text: `v${model.version}` })),
      el("p", { class: "meta", title: config }, trainedOn(model)),
    ];
  }

  // ------------------------------------------------------------------ models
  function renderModels(wanted) {
    const box = $("models");
    box.querySelectorAll(".model, .hint").forEach((node) => node.remove());
    if (!state.models.length) {
      box.append(hint("No model is served yet (tfrec serve polls its folder; export one with tfrec train)."));
      return;
    }
    state.models.forEach((model, index) => {
      const input = el("input", { type: "checkbox", id: `model-${model.name}`, value: model.name });
      input.checked = wanted.length ? wanted.includes(model.name) : index < 3;
      const badges = model.similar_items ? el("span", { class: "badge", text: "similar items" }) : null;
      box.append(el("label", { class: "model" }, input, el("span", {}, model.name, el("span", { class: "badge", text: `v${model.version}` }), badges,
        el("small", { text: trainedOn(model) }))));
    });
  }

  // ------------------------------------------------------------------ history
  function renderHistory() {
    const list = $("history");
    list.replaceChildren(...state.history.map((item, index) => el("li", {},
      el("span", {}, item.title ?? "(not in the catalog)", " ", el("span", { class: "id", text: item.id })),
      el("button", { type: "button", class: "icon", "aria-label": `Remove ${item.title ?? item.id}`, onclick: () => {
        state.history.splice(index, 1);
        renderHistory();
      } }, "×"))));
    $("history-empty").hidden = state.history.length > 0;
    $("history-count").textContent = state.history.length ? `(${state.history.length})` : "";
  }

  function addToHistory(id, title) {
    if (state.history.some((item) => item.id === id)) return;
    const most = state.limits.max_history;
    if (most && state.history.length >= most) {
      showFormError(`The history holds at most ${most} items (--max-history).`);
      return;
    }
    state.history.push({ id, title });
    renderHistory();
  }

  async function search() {
    const query = $("search").value.trim();
    const seq = ++state.searchSeq;
    const list = $("matches");
    if (!query) {
      list.replaceChildren();
      return;
    }
    const model = (selected()[0] || state.models[0])?.name;
    if (!model) return;
    try {
      const data = await api(`tfrec/v1/models/${enc(model)}/catalog?q=${enc(query)}&limit=20`);
      if (seq !== state.searchSeq) return;
      list.replaceChildren(...data.items.map((item) => el("li", {}, el("button", { type: "button", onclick: () => addToHistory(item.item_id, item.title) },
        item.title, " ", el("span", { class: "id", text: item.item_id })))));
      if (!data.matches) list.append(el("li", { class: "hint", text: `No title or id in ${model}'s catalog contains “${query}”.` }));
      else if (data.matches > data.items.length) list.append(el("li", { class: "hint", text: `… and ${data.matches - data.items.length} more: refine the search.` }));
    } catch (error) {
      if (seq === state.searchSeq) list.replaceChildren(el("li", {}, errorBox(error.message)));
    }
  }

  // ------------------------------------------------------------------ results
  function itemRow(rank, id, title, value, k) {
    return el("li", {},
      el("span", { class: "rank", text: String(rank) }),
      el("button", { type: "button", class: "link", title: "Show similar items", onclick: () => showSimilar(id, title, k) },
        title ?? "(no title)", " ", el("span", { class: "id", text: id })),
      el("button", { type: "button", class: "icon add", title: "Add to the history", "aria-label": `Add ${title ?? id} to the history`,
        onclick: () => addToHistory(id, title) }, "+"),
      el("span", { class: "score", text: score(value) }));
  }

  function rankedList(ids, scores, titles, k) {
    const rows = [];
    ids.forEach((id, index) => {
      if (id !== "") rows.push(itemRow(rows.length + 1, id, titles.get(id), Number(scores[index]), k));
    });
    return rows.length ? el("ol", { class: "recs" }, ...rows) : hint("Nothing to recommend.");
  }

  async function fillColumn(body, model, user, history, k, seq) {
    try {
      const data = await predict(model.name, { signature_name: "recommend", inputs: { user_id: [user || ANONYMOUS], history: [history], k } });
      const ids = data.outputs.item_ids[0];
      const titles = await titlesOf(model.name, [...ids, ...history]);
      if (seq !== state.runSeq) return;
      const parts = [rankedList(ids, data.outputs.scores[0], titles, k)];
      const shown = ids.filter((id) => id !== "").length;
      if (shown < k) parts.push(hint(`${shown} of ${k}: nothing else is left to recommend.`));
      const excluded = el("div", { class: "excluded" });
      if (history.length) {
        excluded.append(el("strong", { text: `Excluded as already seen (${history.length})` }),
          el("ul", {}, ...history.map((id) => el("li", {}, titles.get(id) ?? "(not in this model's catalog)", " ", el("span", { class: "id", text: id })))));
      }
      if (user) excluded.append(el("p", { text: `Also excluded: the items user ${user} had in training, when ${model.name} knows the user.` }));
      if (!user && !history.length) excluded.append(el("p", { text: `No user id and no history (sent as the unknown user ${ANONYMOUS}): the model's fallback.` }));
      parts.push(excluded);
      body.replaceChildren(...parts);
    } catch (error) {
      if (seq === state.runSeq) body.replaceChildren(errorBox(error.message));
    }
  }

  function updateURL(models, user, history, k) {
    const params = new URLSearchParams();
    models.forEach((m) => params.append("models", m.name));
    if (user) params.set("user", user);
    history.forEach((id) => params.append("history", id));
    params.set("k", String(k));
    window.history.replaceState(null, "", `?${params}`);
  }

  async function run() {
    showFormError("");
    const models = selected();
    const k = Number($("k").value);
    if (!models.length) return showFormError("Pick at least one model.");
    if (!Number.isInteger(k) || k < 1) return showFormError("k must be a whole number, at least 1.");
    const user = $("user").value.trim();
    const history = state.history.map((item) => item.id);
    updateURL(models, user, history, k);
    const seq = ++state.runSeq;
    const button = $("run");
    button.disabled = true;
    const jobs = [];
    $("results").replaceChildren(...models.map((model) => {
      const body = el("div", {}, hint("Asking the model…"));
      jobs.push(fillColumn(body, model, user, history, k, seq));
      return el("article", { class: "column", "data-model": model.name }, ...columnHead(model), body);
    }));
    await Promise.all(jobs);
    if (seq === state.runSeq) button.disabled = false;
  }

  // ------------------------------------------------------------------ similar items
  async function showSimilar(id, title, k) {
    const panel = $("similar");
    const seq = ++state.similarSeq;
    const chosen = selected().filter((m) => m.similar_items);
    const models = chosen.length ? chosen : state.models.filter((m) => m.similar_items);
    panel.hidden = false;
    $("similar-title").textContent = `Similar to “${title ?? id}”`;
    const columns = $("similar-columns");
    if (!models.length) {
      columns.replaceChildren(hint("No served model has a similar_items signature (item_knn, covisit and the embedding models have one)."));
      return;
    }
    const jobs = [];
    columns.replaceChildren(...models.map((model) => {
      const body = el("div", {}, hint("Asking the model…"));
      jobs.push((async () => {
        try {
          const data = await predict(model.name, { signature_name: "similar_items", inputs: { item_id: [id], k } });
          const ids = data.outputs.item_ids[0];
          const titles = await titlesOf(model.name, ids);
          if (seq === state.similarSeq) body.replaceChildren(ids.some((i) => i !== "") ? rankedList(ids, data.outputs.scores[0], titles, k)
            : hint(`${model.name} knows no items similar to this one.`));
        } catch (error) {
          if (seq === state.similarSeq) body.replaceChildren(errorBox(error.message));
        }
      })());
      return el("article", { class: "column" }, ...columnHead(model, "h3"), body);
    }));
    panel.scrollIntoView({ block: "nearest" });
    await Promise.all(jobs);
  }

  // ------------------------------------------------------------------ start
  async function start() {
    $("query").addEventListener("submit", (event) => {
      event.preventDefault();
      run();
    });
    let timer;
    $("search").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(search, 200);
    });
    $("search").addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        clearTimeout(timer);
        search();
      }
    });
    $("similar-close").addEventListener("click", () => {
      $("similar").hidden = true;
    });

    const params = new URLSearchParams(window.location.search);
    try {
      const data = await api("tfrec/v1/models");
      state.models = data.models;
      state.limits = data.limits || {};
    } catch (error) {
      $("models-hint").textContent = "";
      showFormError(`Cannot list the models: ${error.message}`);
      return;
    }
    if (state.limits.max_k) $("k").max = String(state.limits.max_k);
    const names = state.models.map((m) => m.name);
    const wanted = params.getAll("models").flatMap((value) => (names.includes(value) ? [value] : value.split(","))).map((v) => v.trim()).filter(Boolean);
    renderModels(wanted);
    const unknown = wanted.filter((name) => !byName(name));
    if (unknown.length) showFormError(`Not served here: ${unknown.join(", ")} (served: ${names.join(", ") || "none"}).`);
    if (params.has("user")) $("user").value = params.get("user");
    if (params.has("k")) $("k").value = params.get("k");
    const history = params.getAll("history").filter((id) => id !== "");
    if (history.length && state.models.length) {
      const model = (selected()[0] || state.models[0]).name;
      let titles = new Map();
      try {
        titles = await titlesOf(model, history);
      } catch (error) {
        showFormError(`Cannot read the history's titles: ${error.message}`);
      }
      history.forEach((id) => addToHistory(id, titles.get(id)));
    }
    renderHistory();
    if (params.has("q")) {
      $("search").value = params.get("q");
      search();
    }
    if (!unknown.length && ["user", "history", "run"].some((key) => params.has(key))) await run();
    const similar = params.get("similar");
    if (similar && state.models.length) {
      const model = (selected()[0] || state.models[0]).name;
      const titles = await titlesOf(model, [similar]).catch(() => new Map());
      await showSimilar(similar, titles.get(similar), Number($("k").value) || 10);
    }
  }

  start();
})();
