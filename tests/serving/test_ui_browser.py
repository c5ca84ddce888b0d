"""The web page at /ui, driven by a headless Chromium against the real server.

Needs Debian's chromium and chromium-driver:  apt-get install -y chromium chromium-driver

Desktop (1280 px wide) and phone (390x844, touch, emulated through the DevTools protocol) sizes.
Screenshots go to artifacts/: ui.png (desktop, whole page), ui-phone.png (phone, the result after
classifying) and ui-phone-error.png (phone, a failed request over an earlier result). The copies in
docs/img/ are the same steps run against a server of models/mudraj-e5-small.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import statistics
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

requests = pytest.importorskip("requests")

pytestmark = [pytest.mark.slow, pytest.mark.browser]

from tests._paths import REPO  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "artifacts"
SAMPLE = REPO / "serving" / "static" / "sample.txt"
TIMEOUT = 30
DESKTOP = (1280, 1100)
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


# What the shipped model's line says: longer than the tiny test model's, and what wrapped badly.
def _shipped_line() -> str:
    import json

    meta = json.loads((REPO / "models" / "mudraj-e5-small" / "metadata.json").read_text(encoding="utf-8"))
    return f"{meta['name']} {meta['version']} (int8, cpu)"


SHIPPED_MODEL_LINE = _shipped_line()

# A short article of our own, with a long windowed sentence and an obvious comment.
ARTICLE = (
    "أعلنت وزارة الزراعة اليوم الإثنين بدء موسم حصاد القمح في المحافظات الشمالية، وسط توقعات بإنتاج وفير.\n"
    "وقال وزير الزراعة في مؤتمر صحفي إن المساحات المزروعة هذا العام تجاوزت مئتي ألف هكتار.\n"
    "وأضاف أن الوزارة وفرت ثلاثمئة حصادة لدعم المزارعين الصغار بأسعار رمزية.\n"
    "ولا أحد يصدق هذه الأرقام التي تتكرر كل عام دون أن يلمس المواطن أثرها على سعر الخبز.\n"
    "وأشار الوزير إلى أن مراكز الاستلام ستفتح أبوابها من السادسة صباحا حتى الثانية ظهرا."
)


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install -y chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="mudraj-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=%d,%d" % DESKTOP,
        "--lang=ar",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def phone(driver):
    """The page as a 390x844 touch phone sees it."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    try:
        yield driver
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def reduce_motion(driver, on: bool) -> None:
    features = [{"name": "prefers-reduced-motion", "value": "reduce" if on else "no-preference"}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})


def wait_for(driver, condition, message: str, timeout: float = TIMEOUT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d), message=message)


def open_page(driver, server) -> None:
    driver.get(server.url + "/ui")
    wait_for(
        driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"), "page never became ready"
    )


def page_sentences(driver) -> list[dict]:
    """Each sentence on the page, with the score it shows after itself (CSS generated content)."""
    return driver.execute_script(
        """return Array.from(document.querySelectorAll('#result .sent')).map(el => {
               const after = getComputedStyle(el, '::after');
               return {text: el.textContent, inserted: el.classList.contains('inserted'),
                       score: Number(el.dataset.score), title: el.title,
                       shown: after.display === 'none' || after.visibility === 'hidden' ? null
                              : after.content.replace(/\u2060/g, ''),
                       fontPx: parseFloat(after.fontSize)};
           });"""
    )


def shown_score(score: float) -> str:
    return f'"{round(score * 100)}٪"'


def set_threshold(driver, value: float) -> None:
    driver.execute_script(
        "const s = document.getElementById('threshold'); s.value = String(arguments[0]);"
        "s.dispatchEvent(new Event('input', {bubbles: true}));",
        value,
    )


def highlight_some(driver) -> None:
    """Move the slider to the median score if no sentence is highlighted (for the screenshots)."""
    if not any(s["inserted"] for s in page_sentences(driver)):
        set_threshold(driver, statistics.median(s["score"] for s in page_sentences(driver)))
    assert any(s["inserted"] for s in page_sentences(driver))


def submit(driver, text: str, times: int = 1) -> str:
    """Put `text` (repeated `times` times) in the box, press the button, wait for the answer; the
    result's state. A long text is typed into a hidden box: Chromium needs seconds to lay out 100 000
    characters in a text area, which is no part of what we test."""
    driver.execute_script(
        "const t = document.getElementById('text'); t.style.display = arguments[1] > 1 ? 'none' : '';"
        "t.value = arguments[0].repeat(arguments[1]); t.dispatchEvent(new Event('input', {bubbles: true}));",
        text,
        times,
    )
    driver.find_element("id", "classify").click()  # sets the state to "loading" (at once), unless refused
    wait_for(
        driver,
        lambda d: d.find_element("id", "result").get_attribute("data-state") != "loading",
        "the page never showed a result",
    )
    driver.execute_script(
        "const t = document.getElementById('text'); if (t.style.display) { t.value = '';t.style.display = ''; }"
    )
    return driver.find_element("id", "result").get_attribute("data-state")


def classify_on_page(driver, text: str) -> None:
    state = submit(driver, text)
    assert state == "done", driver.find_element("id", "error").text


def error_on_page(driver) -> dict:
    """The error the page shows (what a page without an error box shows in its status line, if none)."""
    return driver.execute_script(
        """const box = document.getElementById('error');
           if (!box) return {code: null, role: null, text: document.getElementById('status').textContent,
                             shown: true, details: null};
           const p = box.querySelector('p'), details = box.querySelector('details pre');
           return {code: box.dataset.code || null, role: box.getAttribute('role'),
                   text: p ? p.textContent : '', shown: !!p && p.getBoundingClientRect().height > 0,
                   details: details ? details.textContent : null};"""
    )


def staleness(driver) -> dict:
    """How the result says it belongs to an earlier text: attribute, visible note, ARIA description."""
    return driver.execute_script(
        """const r = document.getElementById('result'), note = document.getElementById('stale-note');
           const described = (r.getAttribute('aria-describedby') || '').split(/\\s+/);
           return {stale: r.dataset.stale === 'true', describedByNote: !!note && described.includes(note.id),
                   noteShown: !!note && !note.hidden && note.getBoundingClientRect().height > 0,
                   note: note ? note.textContent : null, opacity: Number(getComputedStyle(r).opacity),
                   sentences: r.querySelectorAll('.sent').length};"""
    )


def output_top(driver) -> float:
    """Where the result section starts, in viewport pixels."""
    return driver.execute_script("return document.querySelector('section.output').getBoundingClientRect().top")


def save_screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000
    print(f"\nscreenshot: {path}")
    return path


def test_ui_classify_threshold_and_sample(server, browser):
    d = browser
    open_page(d, server)
    html = d.find_element("tag name", "html")
    assert html.get_attribute("dir") == "rtl" and html.get_attribute("lang") == "ar"
    card = requests.get(server.url + "/model_card", timeout=10).json()
    assert card["name"] in d.find_element("id", "model").text
    slider = d.find_element("id", "threshold")
    thr = float(slider.get_attribute("value"))
    assert thr == pytest.approx(card["threshold"])  # the slider starts at the model's threshold

    # Classify on the page and compare with the API at the same threshold.
    classify_on_page(d, ARTICLE)
    api = requests.post(server.url + "/classify", json={"text": ARTICLE, "threshold": thr}, timeout=30).json()
    shown = page_sentences(d)
    assert [s["text"] for s in shown] == [s["text"] for s in api["sentences"]]
    assert [s["inserted"] for s in shown] == [s["label"] == "inserted" for s in api["sentences"]]
    assert [s["score"] for s in shown] == [s["score"] for s in api["sentences"]]
    # Each sentence shows its score after itself, no hovering needed; the title keeps one decimal.
    assert [s["shown"] for s in shown] == [shown_score(s["score"]) for s in api["sentences"]]
    assert all(s["title"] and "٪" in s["title"] for s in shown)
    # The whole article is shown back, sentences and the text between them (the scores are generated
    # by the style sheet, so they are not part of the text, nor of what a reader copies).
    assert d.find_element("id", "result").get_attribute("textContent") == ARTICLE
    counts = d.find_element("id", "counts")
    assert counts.get_attribute("data-sentences") == str(len(api["sentences"]))
    assert counts.get_attribute("data-inserted") == str(api["inserted"])

    # The slider re-colours on the page, without a new request.
    scores = [s["score"] for s in shown]
    for value in (0.0, 1.0, statistics.median(scores)):
        set_threshold(d, value)
        now = page_sentences(d)
        assert [s["inserted"] for s in now] == [sc >= value for sc in scores], value
        assert counts.get_attribute("data-inserted") == str(sum(sc >= value for sc in scores))
    set_threshold(d, 0.0)
    assert all(s["inserted"] for s in page_sentences(d))  # all inserted at 0
    set_threshold(d, 1.0)
    assert not any(s["inserted"] for s in page_sentences(d))  # none at 1
    assert d.find_element("id", "threshold-value").text.startswith("1.0")

    # The sample button fills the text box.
    d.execute_script("document.getElementById('text').value = '';")
    d.find_element("id", "sample").click()
    wait_for(d, lambda d: d.find_element("id", "text").get_attribute("value").strip() != "", "sample never loaded")
    assert d.find_element("id", "text").get_attribute("value") == SAMPLE.read_text(encoding="utf-8").strip()

    # Nothing from other hosts: every element's src/href and every resource loaded is this server's.
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(server.url))
    urls = d.execute_script(
        """return [...Array.from(document.querySelectorAll('[src], [href]'), el => el.src || el.href),
                   ...performance.getEntriesByType('resource').map(e => e.name)];"""
    )
    assert urls and all(u.startswith(origin + "/") for u in urls), [u for u in urls if not u.startswith(origin)]
    csp = d.execute_script(
        "const m = document.querySelector('meta[http-equiv=Content-Security-Policy]');return m && m.content;"
    )
    assert csp and "default-src 'self'" in csp

    # Screenshot: the sample article, classified; if nothing is highlighted at the model's threshold
    # (the tiny test model scores everything near 0.5), with the slider at the median score.
    set_threshold(d, thr)
    classify_on_page(d, d.find_element("id", "text").get_attribute("value"))
    highlight_some(d)
    # The whole page, not just the first screenful.
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(DESKTOP[0], min(int(height) + 140, 4000))
    try:
        save_screenshot(d, "ui.png")
    finally:
        d.set_window_size(*DESKTOP)


def refused(max_chars: int) -> list[tuple[str, int, str, list[str]]]:
    """(text typed, times repeated, what the server objects to, words the Arabic message must contain)"""
    return [
        ("", 1, "empty", ["النص فارغ"]),
        ("  \n\t ", 1, "empty", ["النص فارغ"]),
        ("This is not Arabic.", 1, "no-arabic", ["حروف عربية"]),
        ("قال الوزير إن الموسم جيد.\n[ وأضاف أن الحصاد بدأ.", 1, "brackets", ["الأقواس", "السطر 2"]),
        ("ب", max_chars + 1, "too-long", [f"{max_chars + 1:,}", f"{max_chars:,}"]),  # MUDRAJ_MAX_CHARS
        ("كلمة ", 950_000, "too-large", ["أكبر مما يقبله الخادم"]),  # 8.55 MB of UTF-8: over the 8 MiB body limit
    ]


def test_ui_server_errors_in_arabic(server, browser):
    d = browser
    open_page(d, server)
    max_chars = requests.get(server.url + "/model_card", timeout=10).json()["serving"]["max_chars"]
    for text, times, code, words in refused(max_chars):
        assert submit(d, text, times) == "error", code
        err = error_on_page(d)
        assert err["code"] == code, (code, err)
        assert err["role"] == "alert" and err["shown"], err
        assert all(w in err["text"] for w in words), (code, err["text"])
        assert not re.search(r"[A-Za-z]", err["text"]), (code, err["text"])  # Arabic, not the server's English
        assert err["details"] is None, err  # known errors need no server text
    # The next good request clears the error.
    classify_on_page(d, ARTICLE)
    assert error_on_page(d) == {"code": None, "role": "alert", "text": "", "shown": False, "details": None}


# Answers the test server cannot be made to give: replayed through a page-level fetch override.
# (answer as JavaScript, expected code, words in the Arabic message, server text under "details")
NO_GOOD_ANSWER = [
    (
        "new Response(JSON.stringify({error: 'the server is busy'}), {status: 503, headers: {'Retry-After': '1'}})",
        "busy",
        ["مشغول"],
        None,
    ),
    ("new Response('upstream request timeout', {status: 504})", "timeout", ["وقتًا أطول"], None),
    ("Promise.reject(new TypeError('Failed to fetch'))", "network", ["الاتصال بالخادم"], None),
    (
        "new Response(JSON.stringify({error: 'KeyError: windows', detail: ['predictor failed']}), {status: 500})",
        "unknown",
        ["غير متوقَّع", "500"],
        "KeyError: windows\npredictor failed",
    ),
    (
        "new Response('<h1>I am a teapot</h1>', {status: 418, headers: {'Content-Type': 'text/html'}})",
        "unknown",
        ["غير متوقَّع", "418"],
        "<h1>I am a teapot</h1>",
    ),
    (
        "new Response(JSON.stringify({error: '1 validation error for ClassifyInput', detail: [{loc: ['threshold'], "
        "msg: 'Input should be less than or equal to 1'}]}), {status: 400})",
        "unknown",
        ["غير متوقَّع", "400"],
        "1 validation error for ClassifyInput\nthreshold: Input should be less than or equal to 1",
    ),
]


def test_ui_errors_the_server_cannot_be_made_to_give(server, browser):
    d = browser
    open_page(d, server)
    d.execute_script(
        """const real = window.fetch;
           window.fetch = (url, opts) => (String(url).endsWith('classify') && window.__answer)
               ? Promise.resolve().then(window.__answer) : real(url, opts);"""
    )
    for answer, code, words, details in NO_GOOD_ANSWER:
        d.execute_script(f"window.__answer = () => {answer};")  # (the page's policy forbids eval)
        assert submit(d, ARTICLE) == "error", code
        err = error_on_page(d)
        assert err["code"] == code, (code, err)
        assert all(w in err["text"] for w in words), (code, err["text"])
        assert not re.search(r"[A-Za-z]", err["text"].replace("HTTP", "")), (code, err["text"])
        assert err["details"] == details, (code, err)


def test_ui_failed_request_marks_the_result_stale(server, browser):
    """On a phone: after a failed request, the earlier result is marked as not the current text's."""
    d = browser
    with phone(d):
        open_page(d, server)
        d.find_element("id", "sample").click()
        wait_for(d, lambda d: d.find_element("id", "text").get_attribute("value").strip() != "", "no sample")
        classify_on_page(d, d.find_element("id", "text").get_attribute("value"))
        highlight_some(d)
        before = staleness(d)
        assert not before["stale"] and not before["describedByNote"] and not before["noteShown"], before
        assert before["opacity"] == 1 and before["sentences"] > 0

        for text in ("This is not Arabic.", "قال الوزير إن الموسم جيد.\n[ وأضاف أن الحصاد بدأ."):
            assert submit(d, text) == "error"
            # Still there (it may be useful), but dimmed, labelled, and described so to screen readers.
            now = staleness(d)
            assert now["stale"] and now["noteShown"] and now["describedByNote"], now
            assert now["opacity"] < 0.7 and now["sentences"] == before["sentences"], now
            assert "سابق" in now["note"]
        # From the model line down: the message under the button, the earlier result dimmed below it.
        d.execute_script("scrollTo(0, document.getElementById('model').getBoundingClientRect().top + scrollY - 4)")
        save_screenshot(d, "ui-phone-error.png")

        # A good request again: no stale mark.
        classify_on_page(d, ARTICLE)
        after = staleness(d)
        assert not after["stale"] and not after["describedByNote"] and not after["noteShown"], after
        assert after["opacity"] == 1


def model_line(driver) -> dict:
    """The model's name on the page: its boxes, and its label's (the text before it)."""
    return driver.execute_script(
        """const el = document.getElementById('model'), range = document.createRange();
           range.selectNodeContents(el.parentElement.firstChild);
           const r = el.getBoundingClientRect();
           return {rects: el.getClientRects().length, left: r.left, right: r.right, top: r.top,
                   label: range.getBoundingClientRect().toJSON(), width: innerWidth,
                   pageWidth: document.documentElement.scrollWidth};"""
    )


def test_ui_phone_model_line(server, browser):
    d = browser
    with phone(d):
        open_page(d, server)
        assert d.execute_script("return innerWidth") == PHONE["width"]
        served = d.find_element("id", "model").text
        # The shipped model's line (longer than the tiny test model's) and the served one fit, or wrap
        # as one piece: one box, inside the screen, beside or under its label.
        for line in (SHIPPED_MODEL_LINE, served):
            d.execute_script("document.getElementById('model').textContent = arguments[0];", line)
            box = model_line(d)
            assert box["rects"] == 1, (line, box)
            assert 0 <= box["left"] and box["right"] <= box["width"], (line, box)
            assert box["pageWidth"] <= box["width"], box  # nothing sticks out sideways
            label = box["label"]
            assert box["right"] <= label["left"] + 0.5 or box["top"] >= label["bottom"] - 1, (line, box)


def test_ui_phone_scrolls_to_the_result(server, browser):
    d = browser
    with phone(d):
        open_page(d, server)
        # After classifying, the page scrolls (smoothly) to the result, which starts low on the screen.
        assert output_top(d) > PHONE["height"] / 2
        classify_on_page(d, ARTICLE)
        wait_for(d, lambda d: 0 <= output_top(d) <= PHONE["height"] / 4, "never scrolled to the result", timeout=5)

        # With prefers-reduced-motion the jump is immediate: the result is in view the moment it is shown.
        reduce_motion(d, True)
        d.execute_script("scrollTo(0, 0)")
        top_when_done = d.execute_async_script(
            """const done = arguments[arguments.length - 1], r = document.getElementById('result');
               new MutationObserver((_, obs) => {
                   if (r.dataset.state !== 'done') return;
                   obs.disconnect();
                   done(document.querySelector('section.output').getBoundingClientRect().top);
               }).observe(r, {attributes: true, attributeFilter: ['data-state']});
               document.getElementById('classify').click();"""
        )
        assert 0 <= top_when_done <= PHONE["height"] / 4, top_when_done


def test_ui_phone_scores_without_hover(server, browser):
    d = browser
    with phone(d):
        open_page(d, server)
        assert d.execute_script("return matchMedia('(hover: none)').matches")  # a phone cannot hover
        d.find_element("id", "sample").click()
        wait_for(d, lambda d: d.find_element("id", "text").get_attribute("value").strip() != "", "no sample")
        classify_on_page(d, d.find_element("id", "text").get_attribute("value"))
        highlight_some(d)
        # Each sentence shows its score after itself, readable, and the text fits the screen.
        shown = page_sentences(d)
        assert [s["shown"] for s in shown] == [shown_score(s["score"]) for s in shown]
        assert all(s["fontPx"] >= 10 for s in shown), shown
        assert d.execute_script("return document.documentElement.scrollWidth") <= PHONE["width"]
        wait_for(d, lambda d: 0 <= output_top(d) <= PHONE["height"] / 4, "never scrolled to the result")
        save_screenshot(d, "ui-phone.png")


# ---------------------------------------------------------------- the compare tab

SAMPLE_SOURCE = REPO / "serving" / "static" / "sample-source.txt"


def compare_on_page(d) -> None:
    d.find_element("id", "compare").click()
    wait_for(
        d,
        lambda d: d.find_element("id", "cmp-published-view").get_attribute("data-state") in ("done", "error"),
        "compare never finished",
    )


def compared(d) -> dict:
    return d.execute_script(
        """const side = (id) => Array.from(document.querySelectorAll('#' + id + ' .cmp')).map(el => ({
               text: el.textContent, status: el.dataset.status, score: el.dataset.score ? Number(el.dataset.score) : null,
               marked: Array.from(el.querySelectorAll('ins, del')).map(m => m.textContent),
               pct: getComputedStyle(el, '::after').content.replace(/\u2060/g, '')}));
           const box = (id) => document.getElementById(id).getBoundingClientRect();
           return {published: side('cmp-published-view'), source: side('cmp-source-view'),
                   dropped: Array.from(document.querySelectorAll('#cmp-dropped li')).map(li => li.textContent),
                   droppedShown: !document.getElementById('cmp-dropped').hidden,
                   counts: Object.assign({}, document.getElementById('cmp-counts').dataset),
                   pubBox: box('cmp-published-view'), srcBox: box('cmp-source-view'),
                   pageWidth: document.documentElement.scrollWidth};"""
    )


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_ui_compare_tab(server, browser, size):
    d = browser
    with phone(d) if size == "phone" else contextlib.nullcontext(d):
        open_page(d, server)
        assert d.find_element("id", "panel-compare").get_attribute("hidden") is not None
        d.find_element("id", "tab-compare").click()
        assert d.find_element("id", "panel-classify").get_attribute("hidden") is not None
        assert d.find_element("id", "tab-compare").get_attribute("aria-selected") == "true"
        d.find_element("id", "cmp-sample").click()
        wait_for(d, lambda d: d.find_element("id", "cmp-published").get_attribute("value").strip() != "", "no sample")
        src, pub = SAMPLE_SOURCE.read_text(encoding="utf-8").strip(), SAMPLE.read_text(encoding="utf-8").strip()
        assert d.find_element("id", "cmp-source").get_attribute("value") == src
        compare_on_page(d)
        got = compared(d)
        api = requests.post(server.url + "/compare", json={"source": src, "published": pub}, timeout=30).json()
        # The page shows what the API says: statuses, the model's scores, the summary.
        assert [(s["text"], s["status"], s["score"]) for s in got["published"]] == [
            (s["text"], s["status"], s["score"]) for s in api["published"]
        ]
        assert (
            {k: int(got["counts"][k]) for k in api["summary"]}
            == api["summary"]
            == {"kept": 5, "edited": 1, "added": 2, "dropped": 1}
        )
        assert all(s["pct"] == f'"{round(s["score"] * 100)}٪"' for s in got["published"])
        # Edited: the changed characters marked on both sides; dropped: struck out in the source and listed.
        (edited,) = [s for s in got["published"] if s["status"] == "edited"]
        (twin,) = [s for s in got["source"] if s["status"] == "edited"]
        assert edited["marked"] and twin["marked"]
        assert got["droppedShown"] and got["dropped"] == [api["dropped"][0]["text"]]
        assert [s["status"] for s in got["source"]].count("dropped") == 1
        # Both texts come back whole: the sentences and what lies between them.
        assert d.find_element("id", "cmp-published-view").get_attribute("textContent") == pub
        assert d.find_element("id", "cmp-source-view").get_attribute("textContent") == src
        assert got["pageWidth"] <= d.execute_script("return innerWidth")  # nothing sticks out sideways
        if size == "phone":  # one above the other
            assert got["srcBox"]["top"] >= got["pubBox"]["bottom"] - 1
        else:  # side by side, the published text first (on the right, in a right-to-left page)
            assert (
                got["pubBox"]["left"] > got["srcBox"]["left"] and abs(got["pubBox"]["top"] - got["srcBox"]["top"]) < 2
            )
            ARTIFACTS.mkdir(exist_ok=True)
            d.save_screenshot(str(ARTIFACTS / "ui-compare.png"))

        # A bad side is named in the error.
        d.execute_script("document.getElementById('cmp-source').value = '   ';")
        compare_on_page(d)
        error = d.find_element("id", "cmp-error")
        assert error.get_attribute("data-code") == "empty" and "النص الأصلي" in error.text


# ---------------------------------------------------------------- issue 22, item 7

BADGE_ON_ITS_LINE = """
    // For every sentence: is the score badge on the line of the sentence's last character? The badge is
    // generated content, so it is part of the element's last line box: the element's last client rect
    // must also hold the last character.
    return Array.from(document.querySelectorAll(arguments[0])).every(el => {
        const rects = el.getClientRects();
        const text = el.lastChild && el.lastChild.nodeType === 3 ? el.lastChild : null;
        if (!text || !rects.length || !text.length) return true;
        const r = document.createRange();
        r.setStart(text, text.length - 1);
        r.setEnd(text, text.length);
        const ch = r.getClientRects();
        if (!ch.length) return true;
        return Math.abs(ch[ch.length - 1].top - rects[rects.length - 1].top) < 3;
    });"""


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_ui_score_badges_stay_with_their_sentence(server, browser, size):
    """At every width the result column takes, no badge starts a line of its own."""
    d = browser
    with phone(d) if size == "phone" else contextlib.nullcontext(d):
        open_page(d, server)
        classify_on_page(d, SAMPLE.read_text(encoding="utf-8") * 2)
        full = d.execute_script("return document.getElementById('result').getBoundingClientRect().width")
        bad = []
        for width in range(int(full), int(full * 0.55), -3):
            d.execute_script("document.getElementById('result').style.width = arguments[0] + 'px';", width)
            if not d.execute_script(BADGE_ON_ITS_LINE, "#result .sent"):
                bad.append(width)
        d.execute_script("document.getElementById('result').style.width = '';")
        assert not bad, f"a score badge wrapped away from its sentence at widths {bad[:5]}"


def test_ui_compare_tab_marks_an_old_result_stale_after_an_error(server, browser):
    d = browser
    open_page(d, server)
    d.find_element("id", "tab-compare").click()
    d.find_element("id", "cmp-sample").click()
    wait_for(d, lambda d: d.find_element("id", "cmp-published").get_attribute("value").strip() != "", "no sample")
    compare_on_page(d)
    assert d.find_element("id", "cmp-stale-note").get_attribute("hidden") is not None
    d.execute_script("document.getElementById('cmp-source').value = '   ';")
    compare_on_page(d)
    view = d.find_element("id", "cmp-published-view")
    assert view.get_attribute("data-state") == "error"
    assert d.find_element("id", "cmp-stale-note").get_attribute("hidden") is None
    said = d.find_element("id", "cmp-error").text  # item 16: this tab's button, not the classify tab's
    assert "«قارن النصين»" in said and "صنِّف" not in said, said
    assert float(d.execute_script("return getComputedStyle(arguments[0]).opacity", view)) < 0.6
    d.find_element("id", "cmp-sample").click()
    wait_for(d, lambda d: d.find_element("id", "cmp-source").get_attribute("value").strip() != "", "no sample")
    compare_on_page(d)
    assert d.find_element("id", "cmp-stale-note").get_attribute("hidden") is not None
    assert float(d.execute_script("return getComputedStyle(arguments[0]).opacity", view)) == 1.0


def test_the_archive_report_renders_its_plots_and_asks_no_other_host(browser, tmp_path):
    """`mudraj report`'s page opened from disk: every figure decodes, and the page loads nothing at all
    beyond itself (no font, script or image from another host). Screenshot: artifacts/report.png."""
    import json

    from training.evaluation.archive_report import report

    recs = []
    for i in range(120):
        n_ins = (i % 4) if i % 3 else 0
        sents = [
            {
                "start": 0,
                "end": 1,
                "text": f"جملة رقم {k} من المقال {i}.",
                "label": "inserted" if k < n_ins else "reporting",
                "score": 0.95 if k < n_ins else 0.05,
                **(
                    {"kind": {"name": ("hope", "framing", "fake_attribution")[k % 3], "p": 0.7, "top": []}}
                    if k < n_ins
                    else {}
                ),
            }
            for k in range(12)
        ]
        recs.append(
            {"id": f"a{i}", "outlet": f"outlet{i % 5}.example", "date": f"2016-{1 + i % 12:02d}-01", "sentences": sents}
        )
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    report(labels, tmp_path / "rep")
    browser.get((tmp_path / "rep" / "index.html").as_uri())
    images = browser.execute_script(
        "return [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.src.slice(0, 22)])"
    )
    assert len(images) == 4 and all(c and w > 100 and h > 100 for c, w, h, _ in images), images
    assert all(src.startswith("data:image/png;base64") for *_, src in images)
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    foreign = [r for r in resources if not r.startswith(("data:", "file:"))]
    assert not foreign, foreign
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "report.png"))
