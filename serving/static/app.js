// Mudraj web page: plain JS, no build step, nothing from the internet.
// Talks to the service it is served by: ../classify and ../model_card (relative, so a path prefix works).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const text = $("text"), sample = $("sample"), classify = $("classify");
  const slider = $("threshold"), sliderValue = $("threshold-value");
  const result = $("result"), counts = $("counts"), model = $("model"), status = $("status");

  function setStatus(message, isError) {
    status.textContent = message || "";
    status.classList.toggle("error", !!isError);
  }

  function showThreshold() {
    sliderValue.textContent = Number(slider.value).toFixed(3);
  }

  function updateCounts() {
    const sents = result.querySelectorAll(".sent");
    const inserted = result.querySelectorAll(".sent.inserted").length;
    counts.textContent = sents.length
      ? `الجمل: ${sents.length} · المُدرَجة: ${inserted}`
      : "";
    counts.dataset.sentences = String(sents.length);
    counts.dataset.inserted = String(inserted);
  }

  // Re-colour from the scores already on the page: no new request.
  function recolour() {
    const thr = Number(slider.value);
    for (const el of result.querySelectorAll(".sent")) {
      el.classList.toggle("inserted", Number(el.dataset.score) >= thr);
    }
    updateCounts();
  }

  function errorMessage(status, body) {
    if (body && Array.isArray(body.detail)) {
      return body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join(" — ");
    }
    if (Array.isArray(body) && body.length && body[0].error) return body[0].error;
    if (body && body.error) return body.error;
    return `HTTP ${status}`;
  }

  function render(source, data) {
    // Offsets refer to data.text when the service removed brackets, else to what we sent.
    const base = data.text != null ? data.text : source;
    const frag = document.createDocumentFragment();
    let at = 0;
    data.sentences.forEach((s, i) => {
      if (s.start > at) frag.appendChild(document.createTextNode(base.slice(at, s.start)));
      const span = document.createElement("span");
      span.className = "sent" + (s.label === "inserted" ? " inserted" : "");
      span.dataset.index = String(i);
      span.dataset.score = String(s.score);
      span.title = `احتمال الإدراج: ${(s.score * 100).toFixed(1)}٪`;
      if (data.windowed.includes(i)) span.dataset.windowed = "true";
      span.textContent = base.slice(s.start, s.end);
      frag.appendChild(span);
      at = s.end;
    });
    if (at < base.length) frag.appendChild(document.createTextNode(base.slice(at)));
    result.replaceChildren(frag);
    updateCounts();
  }

  async function run() {
    const source = text.value;
    if (!source.trim()) {
      setStatus("الصق نص خبر أولًا.", true);
      return;
    }
    classify.disabled = true;
    result.dataset.state = "loading";
    setStatus("جارٍ التصنيف…");
    try {
      const resp = await fetch("../classify", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text: source, threshold: Number(slider.value) }),
      });
      let body = null;
      try { body = await resp.json(); } catch (_) { /* not JSON */ }
      if (!resp.ok) throw new Error(errorMessage(resp.status, body));
      render(source, body);
      model.textContent = `${body.model.name} ${body.model.version} (${body.model.precision}, ${body.model.device})`;
      result.dataset.state = "done";
      setStatus("");
    } catch (err) {
      result.dataset.state = "error";
      setStatus(`تعذّر التصنيف: ${err.message}`, true);
    } finally {
      classify.disabled = false;
    }
  }

  async function loadSample() {
    try {
      const resp = await fetch("sample.txt");
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      text.value = (await resp.text()).trim();
      setStatus("");
    } catch (err) {
      setStatus(`تعذّر تحميل المقال التجريبي: ${err.message}`, true);
    }
  }

  async function loadModel() {
    try {
      const resp = await fetch("../model_card", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const card = await resp.json();
      const s = card.serving || {};
      model.textContent = `${card.name} ${card.version || ""} (${s.precision || "?"}, ${s.device || "?"})`;
      if (typeof card.threshold === "number") {
        slider.value = String(card.threshold);
        showThreshold();
      }
      model.dataset.threshold = String(card.threshold);
    } catch (err) {
      model.textContent = "غير متاح";
    } finally {
      document.body.dataset.ready = "true";
    }
  }

  slider.addEventListener("input", () => { showThreshold(); recolour(); });
  classify.addEventListener("click", run);
  sample.addEventListener("click", loadSample);
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run();
  });
  showThreshold();
  loadModel();
})();
