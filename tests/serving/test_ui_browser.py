"""The web page at /ui, driven by a headless Chromium against the real server.

Needs Debian's chromium and chromium-driver:  apt-get install -y chromium chromium-driver
"""
from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

import pytest

requests = pytest.importorskip("requests")

pytestmark = [pytest.mark.slow, pytest.mark.browser]

from tests._paths import REPO  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "artifacts"
SAMPLE = REPO / "serving" / "static" / "sample.txt"
TIMEOUT = 30

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
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1100",
                 "--lang=ar"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, condition, message: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT).until(lambda d: condition(d), message=message)


def page_sentences(driver) -> list[dict]:
    return driver.execute_script(
        """return Array.from(document.querySelectorAll('#result .sent')).map(el => ({
               text: el.textContent, inserted: el.classList.contains('inserted'),
               score: Number(el.dataset.score), title: el.title}));"""
    )


def set_threshold(driver, value: float) -> None:
    driver.execute_script(
        "const s = document.getElementById('threshold'); s.value = String(arguments[0]);"
        "s.dispatchEvent(new Event('input', {bubbles: true}));",
        value,
    )


def classify_on_page(driver, text: str) -> None:
    driver.execute_script(
        "const t = document.getElementById('text'); t.value = arguments[0];"
        "t.dispatchEvent(new Event('input', {bubbles: true}));",
        text,
    )
    driver.find_element("id", "classify").click()
    wait_for(driver, lambda d: d.find_element("id", "result").get_attribute("data-state") in ("done", "error"),
             "the page never showed a result")
    state = driver.find_element("id", "result").get_attribute("data-state")
    assert state == "done", driver.find_element("id", "status").text


def test_ui_classify_threshold_and_sample(server, browser, tmp_path):
    d = browser
    d.get(server.url + "/ui")
    wait_for(d, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"), "page never became ready")
    html = d.find_element("tag name", "html")
    assert html.get_attribute("dir") == "rtl" and html.get_attribute("lang") == "ar"
    assert "mudraj-tiny" in d.find_element("id", "model").text
    card = requests.get(server.url + "/model_card", timeout=10).json()
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
    assert all(s["title"] and "٪" in s["title"] for s in shown)  # probability on hover
    # The whole article is shown back, sentences and the text between them.
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

    # A bad request shows the service's message, not a blank page.
    classify_bad = "This is not Arabic."
    d.execute_script("document.getElementById('text').value = arguments[0];", classify_bad)
    d.find_element("id", "classify").click()
    wait_for(d, lambda d: d.find_element("id", "result").get_attribute("data-state") == "error", "no error shown")
    assert "Arabic" in d.find_element("id", "status").text

    # The sample button fills the text box.
    d.execute_script("document.getElementById('text').value = '';")
    d.find_element("id", "sample").click()
    wait_for(d, lambda d: d.find_element("id", "text").get_attribute("value").strip() != "", "sample never loaded")
    assert d.find_element("id", "text").get_attribute("value") == SAMPLE.read_text(encoding="utf-8").strip()

    # Screenshot: the sample article, classified, with the slider at the median score so some
    # sentences are highlighted (the tiny test model scores everything near 0.5).
    classify_on_page(d, d.find_element("id", "text").get_attribute("value"))
    sample_scores = [s["score"] for s in page_sentences(d)]
    set_threshold(d, statistics.median(sample_scores))
    assert any(s["inserted"] for s in page_sentences(d))
    # The whole page, not just the first screenful.
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1280, min(int(height) + 140, 4000))
    ARTIFACTS.mkdir(exist_ok=True)
    for path in (ARTIFACTS / "ui.png", tmp_path / "ui.png"):
        assert d.save_screenshot(str(path)), path
        assert path.stat().st_size > 10_000
    print(f"\nscreenshot: {ARTIFACTS / 'ui.png'} and {tmp_path / 'ui.png'}")
