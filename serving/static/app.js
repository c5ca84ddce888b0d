// Mudraj web page: plain JS, no build step, nothing from the internet.
// Talks to the service it is served by: ../classify and ../model_card (relative, so a path prefix works).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const text = $("text"), sample = $("sample"), classify = $("classify");
  const slider = $("threshold"), sliderValue = $("threshold-value");
  const output = $("output"), result = $("result"), staleNote = $("stale-note");
  const counts = $("counts"), model = $("model"), status = $("status"), errorBox = $("error");

  const number = (n) => Number(n).toLocaleString("en-US");

  // The server's errors, in Arabic. A row matches an answer by its HTTP status (0: no answer at all)
  // and, when it has one, a pattern found in the server's English message; the first match wins.
  // Anything else gets the generic message, with the server's own words under "details".
  // ctx: "classify" or "compare" (the tab asking), so that the advice names that tab's button and task.
  const ACT = {
    classify: { button: "«صنِّف الجمل»", shorten: "قسِّمه أجزاءً أقصر وصنِّف كل جزء وحده.",
                failed: "تعذّر التصنيف", took: "استغرق التصنيف" },
    compare: { button: "«قارن النصين»", shorten: "قصِّر النص المعنيّ ثم أعد المقارنة.",
               failed: "تعذّرت المقارنة", took: "استغرقت المقارنة" },
  };
  const ERRORS = [
    // [code, HTTP statuses, pattern in the message (null: any), what the reader sees (m: the match, a: ACT[ctx])]
    ["empty", [400, 422], /text is empty/i,
      (m, a) => `النص فارغ. الصق نص خبر عربي ثم اضغط ${a.button}.`],
    ["too-long", [400, 422], /(\d+) characters\b.*?\bthe limit is (\d+)/i,
      (m, a) => `النص أطول من المسموح: عدد أحرفه ${number(m[1])}، والحد ${number(m[2])}. ${a.shorten}`],
    ["no-arabic", [400, 422], /no Arabic letters/i,
      () => "لا يحتوي النص على حروف عربية، ومُدرَج يقرأ الأخبار المكتوبة بالعربية."],
    ["not-arabic", [400, 422], /mostly not Arabic|Persian or Urdu/i,
      () => "النص ليس بالعربية (أغلب حروفه من لغة أخرى، أو هو بالفارسية أو الأردية)، ومُدرَج يقرأ الأخبار المكتوبة بالعربية."],
    ["brackets", [400, 422], /unbalanced brackets(?: \(line (\d+))?/i,
      (m) => `الأقواس المربعة في النص غير متوازنة${m[1] ? ` (السطر ${m[1]})` : ""}. هذه الأقواس تُعلِّم الجمل المُدرَجة، فلكل [ قوسٌ يغلقه ].`],
    ["too-large", [413], null,
      (m, a) => `النص أكبر مما يقبله الخادم في طلب واحد. ${a.shorten}`],
    ["busy", [503], null,
      () => "الخادم مشغول الآن أو لم يجهز بعد. أعد المحاولة بعد قليل."],
    ["timeout", [504], null,
      (m, a) => `${a.took} وقتًا أطول من المسموح. أعد المحاولة، أو جرّب نصًّا أقصر.`],
    ["network", [0], null,
      () => "تعذّر الاتصال بالخادم. تحقّق من الاتصال ثم أعد المحاولة."],
  ];

  function explain(httpStatus, message, ctx) {
    const a = ACT[ctx] || ACT.classify;
    for (const [code, statuses, pattern, say] of ERRORS) {
      if (!statuses.includes(httpStatus)) continue;
      const m = pattern ? pattern.exec(message) : [];
      if (m) return { code, text: say(m, a) };
    }
    const what = httpStatus ? `ردّ الخادم بخطأ غير متوقَّع (HTTP ${httpStatus}).` : "حدث خطأ غير متوقَّع.";
    return { code: "unknown", text: `${a.failed}: ${what}`, details: message };
  }

  // The server's words: {"error": "...", "detail": [{"loc", "msg"} | "..."]} (validation errors and
  // the service's own), else the body as it came (an HTML page from a proxy, "Service Busy", ...).
  function serverMessage(body, raw) {
    const parts = [];
    for (const item of Array.isArray(body) ? body : [body]) {
      if (!item || typeof item !== "object") continue;
      if (typeof item.error === "string") parts.push(item.error);
      const detail = Array.isArray(item.detail) ? item.detail : item.detail != null ? [item.detail] : [];
      for (const d of detail) {
        if (typeof d === "string") parts.push(d);
        else if (d && d.msg) parts.push(d.loc && d.loc.length ? `${d.loc.join(".")}: ${d.msg}` : d.msg);
      }
    }
    return parts.length ? parts.join("\n") : (raw || "").trim().slice(0, 2000);
  }

  // err: {code, text, details?}; box: where it goes (this tab's error box unless another is given).
  function showError(err, into) {
    const target = into || errorBox;
    const box = document.createElement("div");
    box.className = "error-box";
    const p = document.createElement("p");
    p.textContent = err.text;
    box.appendChild(p);
    if (err.details) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "التفاصيل كما أرسلها الخادم";
      const pre = document.createElement("pre");
      pre.dir = "ltr";
      pre.lang = "en";
      pre.textContent = err.details;
      details.append(summary, pre);
      box.appendChild(details);
    }
    target.dataset.code = err.code;
    target.replaceChildren(box);
    bringIntoView(target, "nearest");
  }

  function clearError() {
    delete errorBox.dataset.code;
    errorBox.replaceChildren();
  }

  // A result that no longer answers the text in the box: kept (it may still be useful), but dimmed,
  // labelled, and described as such to screen readers.
  function markStale(stale) {
    stale = stale && result.querySelector(".sent") !== null;
    staleNote.hidden = !stale;
    output.classList.toggle("stale", stale);
    counts.classList.toggle("stale", stale);
    if (stale) {
      result.dataset.stale = "true";
      result.setAttribute("aria-describedby", "stale-note");
    } else {
      delete result.dataset.stale;
      result.removeAttribute("aria-describedby");
    }
  }

  function bringIntoView(el, block) {
    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    el.scrollIntoView({ behavior: still ? "auto" : "smooth", block });
  }

  function setStatus(message) {
    status.textContent = message || "";
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
    applyKindFilter();
    updateCounts();
  }

  // Kinds of insertion (bundles with a kind head): names and descriptions from /model_card.
  const kindInfo = {};
  const kindFilter = $("kind-filter");
  function applyKindFilter() {
    const want = kindFilter ? kindFilter.value : "";
    for (const el of result.querySelectorAll(".sent")) {
      el.classList.toggle("filtered-out", want !== "" && !(el.classList.contains("inserted") && el.dataset.kind === want));
    }
  }
  function showKinds(kinds) {
    const box = $("kinds");
    if (!box || !kinds || !kinds.length) return;
    const list = $("kind-list");
    for (const k of kinds) {
      kindInfo[k.name] = k;
      const item = document.createElement("li");
      const name = document.createElement("b");
      name.textContent = k.ar;
      item.append(name, document.createTextNode(` — ${k.desc_ar}`));
      item.dataset.kind = k.name;
      list.appendChild(item);
      const opt = document.createElement("option");
      opt.value = k.name;
      opt.textContent = k.ar;
      kindFilter.appendChild(opt);
    }
    box.hidden = false;
  }

  function render(source, data) {
    // Offsets refer to data.text when the service removed brackets, else to what we sent.
    const base = data.text != null ? data.text : source;
    const frag = document.createDocumentFragment();
    let at = 0;
    data.sentences.forEach((s, i) => {
      if (s.start > at) frag.appendChild(document.createTextNode(base.slice(at, s.start)));
      const span = document.createElement("span");
      span.className = "sent" + (s.score >= Number(slider.value) ? " inserted" : "");
      span.dataset.index = String(i);
      span.dataset.score = String(s.score);
      // Shown after the sentence by the style sheet (no hover needed; not part of copied text).
      span.dataset.pct = `${Math.round(s.score * 100)}٪`;
      span.title = `احتمال الإدراج: ${(s.score * 100).toFixed(1)}٪`;
      if (s.kind) {  // asked with threshold 0, so every sentence has one; shown while it is flagged
        const k = kindInfo[s.kind.name] || { ar: s.kind.name, desc_ar: "" };
        span.dataset.kind = s.kind.name;
        span.dataset.kindAr = k.ar;
        span.title += `\nالنوع: ${k.ar} (${Math.round(s.kind.p * 100)}٪)${k.desc_ar ? " — " + k.desc_ar : ""}`;
      }
      if (data.windowed.includes(i)) span.dataset.windowed = "true";
      span.textContent = base.slice(s.start, s.end);
      frag.appendChild(span);
      at = s.end;
    });
    if (at < base.length) frag.appendChild(document.createTextNode(base.slice(at)));
    result.replaceChildren(frag);
    applyKindFilter();
    updateCounts();
  }

  async function request(source) {
    let resp;
    try {
      resp = await fetch("../classify", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        // Threshold 0: every sentence comes back with its score and, with a kind head, its kind; the
        // page decides what is flagged with the slider (recolour) and shows the kind of what is.
        body: JSON.stringify({ text: source, threshold: 0 }),
      });
    } catch (err) {
      return { error: explain(0, String(err && err.message || err)) };
    }
    const raw = await resp.text().catch(() => "");
    let body = null;
    try { body = JSON.parse(raw); } catch (_) { /* not JSON */ }
    if (!resp.ok) return { error: explain(resp.status, serverMessage(body, raw)) };
    if (!body || !Array.isArray(body.sentences)) return { error: explain(resp.status, raw.slice(0, 2000)) };
    return { data: body };
  }

  async function run() {
    if (classify.disabled) return;  // one request at a time (Ctrl+Enter while one is running)
    const source = text.value;
    classify.disabled = true;
    result.dataset.state = "loading";
    result.setAttribute("aria-busy", "true");
    clearError();
    setStatus("جارٍ التصنيف…");
    const { data, error } = await request(source);
    result.removeAttribute("aria-busy");
    classify.disabled = false;
    if (error) {
      result.dataset.state = "error";
      setStatus("");
      markStale(true);
      showError(error);
      return;
    }
    render(source, data);
    markStale(false);
    model.textContent = `${data.model.name} ${data.model.version} (${data.model.precision}, ${data.model.device})`;
    result.dataset.state = "done";
    setStatus("تمّ التصنيف.");
    bringIntoView(output, "start");
  }

  async function loadSample() {
    try {
      const resp = await fetch("sample.txt");
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      text.value = (await resp.text()).trim();
      clearError();
      setStatus("");
    } catch (err) {
      showError({ code: "sample", text: "تعذّر تحميل المقال التجريبي.", details: String(err.message || err) });
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
      showKinds(card.kinds);
    } catch (err) {
      model.textContent = "غير متاح";
    } finally {
      document.body.dataset.ready = "true";
    }
  }

  // For compare.js: the same error wording, server-message reading and error box.
  window.Mudraj = { explain, serverMessage, showError, bringIntoView };

  // Tabs: classify one article, or compare a published text with its source.
  const tabs = ["classify", "compare"].map((name) => ({ tab: $(`tab-${name}`), panel: $(`panel-${name}`) }));
  function select(which) {
    for (const t of tabs) {
      const on = t === which;
      t.tab.setAttribute("aria-selected", String(on));
      t.tab.tabIndex = on ? 0 : -1;
      t.panel.hidden = !on;
    }
    document.body.dataset.tab = which.tab.id.replace("tab-", "");
  }
  tabs.forEach((t, i) => {
    t.tab.addEventListener("click", () => select(t));
    t.tab.addEventListener("keydown", (e) => {  // arrow keys move between tabs (right-to-left page)
      const step = e.key === "ArrowLeft" ? 1 : e.key === "ArrowRight" ? -1 : 0;
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length];
      select(next);
      next.tab.focus();
    });
  });
  if (location.hash === "#compare") select(tabs[1]);

  slider.addEventListener("input", () => { showThreshold(); recolour(); });
  if (kindFilter) kindFilter.addEventListener("change", applyKindFilter);
  classify.addEventListener("click", run);
  sample.addEventListener("click", loadSample);
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run();
  });
  showThreshold();
  loadModel();
})();
