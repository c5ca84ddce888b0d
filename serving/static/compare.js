// Mudraj web page, compare tab: the published text against its source, through ../compare.
// Error wording, the reading of the server's messages and the error box are app.js's (window.Mudraj).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const source = $("cmp-source"), published = $("cmp-published"), button = $("compare");
  const sampleButton = $("cmp-sample"), status = $("cmp-status"), errorBox = $("cmp-error");
  const pubView = $("cmp-published-view"), srcView = $("cmp-source-view");
  const counts = $("cmp-counts"), dropped = $("cmp-dropped"), output = $("cmp-output");
  const STATUS = { kept: "كما في الأصل", edited: "عُدِّلت", added: "أُضيفت" };

  function showError(err) {
    window.Mudraj.showError({ ...err, text: err.text.replace("تعذّر التصنيف", "تعذّرت المقارنة") }, errorBox);
  }

  // Which side an error is about: the server names the field ("source: text is empty", "published: ...").
  function sideOf(message) {
    if (/^source\b/m.test(message)) return "النص الأصلي: ";
    if (/^published\b/m.test(message)) return "النص المنشور: ";
    return "";
  }

  // One sentence of a text as a span; `marks` are [start, end) ranges inside it to wrap in `tag`.
  function sentenceSpan(text, start, end, cls, marks, tag) {
    const span = document.createElement("span");
    span.className = "cmp " + cls;
    let at = start;
    for (const [a, b] of marks) {
      if (a > at) span.appendChild(document.createTextNode(text.slice(at, a)));
      if (b > a) {
        const m = document.createElement(tag);
        m.textContent = text.slice(a, b);
        span.appendChild(m);
      }
      at = Math.max(at, b);
    }
    if (at < end) span.appendChild(document.createTextNode(text.slice(at, end)));
    return span;
  }

  // A whole text with its sentences wrapped: the text between them (spaces, line breaks) kept as is.
  function fill(view, text, items) {
    const frag = document.createDocumentFragment();
    let at = 0;
    for (const it of items.sort((x, y) => x.start - y.start)) {
      if (it.start > at) frag.appendChild(document.createTextNode(text.slice(at, it.start)));
      frag.appendChild(it.node);
      at = it.end;
    }
    if (at < text.length) frag.appendChild(document.createTextNode(text.slice(at)));
    view.replaceChildren(frag);
  }

  function render(src, pub, data) {
    const pubText = data.published_text != null ? data.published_text : pub;
    const srcText = data.source_text != null ? data.source_text : src;
    const pubItems = [], srcItems = [];
    data.published.forEach((s, i) => {
      const marks = s.changes.filter((c) => c.published[1] > c.published[0]).map((c) => c.published);
      const node = sentenceSpan(pubText, s.start, s.end, s.status, marks, "ins");
      node.dataset.index = String(i);
      node.dataset.status = s.status;
      node.dataset.score = String(s.score);
      node.dataset.pct = `${Math.round(s.score * 100)}٪`;
      node.classList.toggle("flagged", s.label === "inserted");
      node.title = `${STATUS[s.status]}` + (s.status === "edited" ? ` (تشابه ${s.similarity.toFixed(0)}٪)` : "")
        + ` · رأي النموذج: احتمال الإدراج ${(s.score * 100).toFixed(1)}٪`;
      pubItems.push({ start: s.start, end: s.end, node });
      if (s.source) {
        const srcMarks = s.changes.filter((c) => c.source[1] > c.source[0]).map((c) => c.source);
        const twin = sentenceSpan(srcText, s.source.start, s.source.end, s.status, srcMarks, "del");
        twin.dataset.status = s.status;
        srcItems.push({ start: s.source.start, end: s.source.end, node: twin });
      }
    });
    const list = dropped.querySelector("ol");
    list.replaceChildren();
    for (const d of data.dropped) {
      const twin = sentenceSpan(srcText, d.start, d.end, "dropped", [], "del");
      twin.dataset.status = "dropped";
      srcItems.push({ start: d.start, end: d.end, node: twin });
      const li = document.createElement("li");
      li.textContent = d.text;
      list.appendChild(li);
    }
    dropped.hidden = data.dropped.length === 0;
    fill(pubView, pubText, pubItems);
    fill(srcView, srcText, srcItems);
    const n = data.summary;
    const flagged = data.published.filter((s) => s.label === "inserted").length;
    counts.textContent = `كما في الأصل: ${n.kept} · عُدِّلت: ${n.edited} · أُضيفت: ${n.added} · حُذفت: ${n.dropped}`
      + ` · رأى النموذج ${flagged} منها مُدرَجة`;
    for (const [k, v] of Object.entries(n)) counts.dataset[k] = String(v);
    counts.dataset.flagged = String(flagged);
  }

  // After a failed comparison an earlier result stays on screen, dimmed and said to be stale.
  function markStale(stale) {
    output.classList.toggle("stale", stale);
    $("cmp-stale-note").hidden = !stale;
  }

  async function run() {
    if (button.disabled) return;
    const src = source.value, pub = published.value;
    button.disabled = true;
    pubView.dataset.state = srcView.dataset.state = "loading";
    errorBox.replaceChildren();
    delete errorBox.dataset.code;
    status.textContent = "جارٍ المقارنة…";
    let resp, raw = "", body = null;
    try {
      resp = await fetch("../compare", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ source: src, published: pub }),
      });
      raw = await resp.text().catch(() => "");
      try { body = JSON.parse(raw); } catch (_) { /* not JSON */ }
    } catch (err) {
      resp = null;
      raw = String(err && err.message || err);
    }
    button.disabled = false;
    status.textContent = "";
    if (!resp || !resp.ok || !body || !Array.isArray(body.published)) {
      const message = resp ? window.Mudraj.serverMessage(body, raw) : raw;
      const err = window.Mudraj.explain(resp ? resp.status : 0, message, "compare");
      err.text = sideOf(message) + err.text;
      pubView.dataset.state = srcView.dataset.state = "error";
      markStale(pubView.querySelector(".cmp") !== null);
      showError(err);
      return;
    }
    markStale(false);
    render(src, pub, body);
    pubView.dataset.state = srcView.dataset.state = "done";
    status.textContent = "تمّت المقارنة.";
    window.Mudraj.bringIntoView(output, "start");
  }

  async function loadSample() {
    try {
      const [a, b] = await Promise.all(["sample-source.txt", "sample.txt"].map(async (name) => {
        const resp = await fetch(name);
        if (!resp.ok) throw new Error(`${name}: HTTP ${resp.status}`);
        return (await resp.text()).trim();
      }));
      source.value = a;
      published.value = b;
      errorBox.replaceChildren();
    } catch (err) {
      showError({ code: "sample", text: "تعذّر تحميل المثال.", details: String(err.message || err) });
    }
  }

  button.addEventListener("click", run);
  sampleButton.addEventListener("click", loadSample);
  for (const box of [source, published]) {
    box.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(); });
  }
})();
