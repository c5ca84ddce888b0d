"""The screenshots in docs/archive.md, made the way a user gets there (issue 24).

    python bench/docs_screenshots.py --model models/mudraj-e5-small --articles build/corpus/test.jsonl

1. `mudraj predict` on the first N test articles (outlet and date carried through), then `mudraj report`:
   docs/img/archive-report.png is its page, opened from disk in headless Chromium.
2. `mudraj serve --model M`, the labelled example article pasted into the page at /ui and classified:
   docs/img/ui-kinds.png shows the flagged sentences with the kind of each.
Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT_SHOT_HEIGHT = 2300
sys.path.insert(0, str(REPO))


def browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--lang=ar",
        f"--window-size={width},{height}",
        "--disable-background-networking",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=opts)


def report_shot(model: Path, articles: Path, n: int, out_png: Path, work: Path) -> dict:
    rows = [json.loads(line) for line in articles.read_text(encoding="utf-8").splitlines()[:n]]
    subset = work / "articles.jsonl"
    subset.write_text(
        "".join(
            json.dumps({k: r[k] for k in ("id", "text", "outlet", "date") if k in r}, ensure_ascii=False) + "\n"
            for r in rows
        ),
        encoding="utf-8",
    )
    mudraj = [sys.executable, "-m", "training.cli"]
    subprocess.run(
        [*mudraj, "predict", str(subset), "-m", str(model), "-o", str(work / "labels.jsonl"), "-q"],
        check=True,
        cwd=REPO,
    )
    done = subprocess.run(
        [*mudraj, "report", str(work / "labels.jsonl"), "-o", str(work / "report")],
        check=True,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    d = browser(1280, 2400)
    try:
        d.get((work / "report" / "index.html").as_uri())
        time.sleep(1)
        # The first screens (summary, score distribution, outlets); the full page of 600 articles is too
        # tall to read as one image.
        height = d.execute_script("return document.body.scrollHeight")
        d.set_window_size(1280, min(int(height) + 40, REPORT_SHOT_HEIGHT))
        d.save_screenshot(str(out_png))
    finally:
        d.quit()
    return json.loads(done.stdout)


def page_shot(model: Path, example: Path, out_png: Path, port: int) -> None:
    from serving.brackets import offsets_text
    from serving.serve import ServerProcess

    text = offsets_text(example.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(model, log=Path(tmp) / "server.log", port=port) as server:
        d = browser(1280, 1800)
        try:
            d.get(server.url + "/ui/")
            d.execute_script(
                "const t = document.getElementById('text'); t.value = arguments[0];"
                "t.dispatchEvent(new Event('input', {bubbles: true})); document.getElementById('classify').click();",
                text,
            )
            for _ in range(120):
                if d.find_element("id", "result").get_attribute("data-state") == "done":
                    break
                time.sleep(0.5)
            d.execute_script("const k = document.getElementById('kinds'); if (k) k.open = true;")
            time.sleep(0.5)
            height = d.execute_script("return document.body.scrollHeight")
            d.set_window_size(1280, min(int(height) + 40, 4000))
            d.save_screenshot(str(out_png))
        finally:
            d.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "models" / "mudraj-e5-small")
    ap.add_argument("--articles", type=Path, default=REPO / "build" / "corpus" / "test.jsonl")
    ap.add_argument("--n", type=int, default=600, help="test articles labelled for the report")
    ap.add_argument("--example", type=Path, default=REPO.parent / "shared" / "examples" / "aleppo-unga-2016.txt")
    ap.add_argument("--port", type=int, default=3977)
    ap.add_argument("--img", type=Path, default=REPO / "docs" / "img")
    a = ap.parse_args()
    a.img.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        summary = report_shot(a.model, a.articles, a.n, a.img / "archive-report.png", Path(tmp))
        print(json.dumps(summary, indent=2))
    page_shot(a.model, a.example, a.img / "ui-kinds.png", a.port)
    print(f"wrote {a.img / 'archive-report.png'} and {a.img / 'ui-kinds.png'}")


if __name__ == "__main__":
    main()
