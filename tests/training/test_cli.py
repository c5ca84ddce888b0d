"""The one command line: `serve` and `predict` run without torch (and without Ray); user errors are one line,
bugs keep their traceback, MUDRAJ_DEBUG=1 shows it for everything."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tests._paths import REPO, TINY_DATA, cli_commands
from training.cli import app

runner = CliRunner()

# Run the CLI in a fresh interpreter where importing torch or transformers fails outright.
NO_TORCH = """
import json, os, sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
sys.modules["ray"] = None  # serving and the local engine never need Ray
from typer.testing import CliRunner
from training.cli import app
calls = []
os.execve = lambda exe, cmd, env: calls.append({"cmd": cmd, "model": env.get("MUDRAJ_MODEL")}) or sys.exit(0)
args = json.loads(sys.argv[1])
res = CliRunner().invoke(app, args)
print(json.dumps({"code": res.exit_code, "out": res.output, "exc": repr(res.exception), "execve": calls}))
"""


def _no_torch(args):
    out = subprocess.run(
        [sys.executable, "-c", NO_TORCH, json.dumps(args)], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_predict_and_serve_never_import_torch(tiny_bundle, tmp_path):
    art = tmp_path / "a.txt"
    art.write_text("قال الوزير إن العمل مستمر. ويأمل الجميع أن ينتهي قريبا.", encoding="utf-8")
    r = _no_torch(["predict", "-m", str(tiny_bundle), str(art)])
    assert r["code"] == 0, r
    assert len(json.loads(r["out"].strip())["sentences"]) == 2
    r = _no_torch(["serve", "-m", str(tiny_bundle), "--port", "3999"])
    assert r["code"] == 0, r
    (call,) = r["execve"]
    assert call["cmd"][1:5] == ["-m", "bentoml", "serve", "serving.service:Mudraj"]
    assert call["model"] == str(tiny_bundle.resolve())


def test_user_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    res = runner.invoke(app, ["predict", "-m", str(missing), str(tmp_path)])
    assert res.exit_code == 2 and "no such folder" in res.output and "Traceback" not in res.output
    monkeypatch.setenv("MUDRAJ_DEBUG", "1")
    res = runner.invoke(app, ["predict", "-m", str(missing), str(tmp_path)])
    assert res.exit_code == 1 and "no such folder" in str(res.exception)  # raised, with its traceback


def test_a_bug_is_not_disguised_as_a_user_error(tiny_bundle, tmp_path, monkeypatch):
    import serving.predictor

    def broken(self, *a, **k):
        raise KeyError("a bug deep inside")

    monkeypatch.setattr(serving.predictor.Predictor, "predict_texts", broken)
    art = tmp_path / "a.txt"
    art.write_text("قال الوزير إن العمل مستمر.", encoding="utf-8")
    res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(art)])
    assert isinstance(res.exception, KeyError) and res.exit_code == 1


def test_the_command_list_is_the_apps_own():
    assert {"predict", "compare", "serve", "diff", "transfer", "report", "gate", "kinds", "corpus"} <= set(
        cli_commands()
    )


@pytest.mark.parametrize("cmd", cli_commands())
def test_every_command_has_help(cmd):
    res = runner.invoke(app, [cmd, "--help"])
    assert res.exit_code == 0 and "Usage" in res.output


# ---------------------------------------------------------------- issue 12, point 8: the predict interface

ARTICLE = "افتتح الوزير المحطة. وقال إنها جاهزة."


def test_version_comes_from_the_installed_package():
    from importlib.metadata import version

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout == f"mudraj {version('mudraj')}\n"


def test_predict_dash_reads_one_article_from_stdin(tiny_bundle, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text(ARTICLE, encoding="utf-8")
    from_file = json.loads(runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(f)]).stdout)
    res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), "-"], input=ARTICLE)
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert rec["id"] == "stdin" and rec["sentences"] == from_file["sentences"]


def test_predict_csv_is_one_row_per_sentence(tiny_bundle, tmp_path):
    import csv
    import io

    f = tmp_path / "a.jsonl"
    f.write_text(
        "".join(
            json.dumps({"id": i, "text": ARTICLE + ' "اقتباس, بفاصلة".'}, ensure_ascii=False) + "\n" for i in ("x", "y")
        ),
        encoding="utf-8",
    )
    recs = [json.loads(l) for l in runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(f)]).stdout.splitlines()]
    res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(f), "--format", "csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == ["id", "index", "start", "end", "label", "score", "kind", "kind_p", "kind_2", "kind_3", "text"]
    expected = [
        [r["id"], str(i), str(s["start"]), str(s["end"]), s["label"], s["score"], s["text"]]
        for r in recs
        for i, s in enumerate(r["sentences"])
    ]
    assert [row[:5] + [float(row[5]), row[10]] for row in rows[1:]] == expected
    assert all(row[6:10] == ["", "", "", ""] for row in rows[1:])  # no kind head in this bundle: empty kind cells
    assert any('"' in row[10] and "," in row[10] for row in rows[1:])  # quoted by the csv module


def test_predict_table_puts_score_and_label_first_and_colours_only_on_a_terminal(tiny_bundle, tmp_path):
    import re

    f = tmp_path / "water.txt"
    f.write_text(ARTICLE, encoding="utf-8")
    args = ["predict", "-m", str(tiny_bundle), str(f), "--format", "table"]
    sentences = ["افتتح الوزير المحطة.", "وقال إنها جاهزة."]
    plain = runner.invoke(app, args + ["--threshold", "0"], color=False)
    assert plain.exit_code == 0 and "\x1b[" not in plain.stdout, plain.output
    lines = plain.stdout.splitlines()
    assert lines[0].startswith("water") and "2 sentences" in lines[0] and "2 inserted" in lines[0]
    for line, text in zip(lines[1:3], sentences):
        assert re.fullmatch(r"\s*[01]\.\d{3}\s+inserted\s+" + re.escape(text), line), line
    coloured = runner.invoke(app, args + ["--threshold", "0"], color=True)
    assert all("\x1b[" in line for line in coloured.stdout.splitlines()[1:3])  # inserted: highlighted
    reporting = runner.invoke(app, args + ["--threshold", "1"], color=True)
    for line, text in zip(reporting.stdout.splitlines()[1:3], sentences):
        assert "\x1b[" not in line and re.fullmatch(r"\s*0\.\d{3}\s+reporting\s+" + re.escape(text), line), line


def test_progress_bar_on_a_terminal_for_a_folder_unless_quiet(tiny_bundle, monkeypatch):
    import training.cli.common

    args = ["predict", "-m", str(tiny_bundle), str(TINY_DATA)]
    n = len(list(TINY_DATA.glob("*.txt")))
    assert f"{n}/{n}" not in runner.invoke(app, args).stderr  # stderr is not a terminal here
    monkeypatch.setattr(training.cli.common, "stderr_is_terminal", lambda: True)
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and f"{n}/{n}" in res.stderr and len(res.stdout.splitlines()) == n
    assert f"{n}/{n}" not in runner.invoke(app, args + ["--quiet"]).stderr


# ---------------------------------------------------------------- issue 12, point 9: clear errors


@pytest.mark.parametrize("kind", ["folder", "under a file"])
def test_an_unwritable_out_is_refused_before_any_work(tiny_bundle, tmp_path, monkeypatch, kind):
    import serving.predictor

    art = tmp_path / "a.txt"
    art.write_text(ARTICLE, encoding="utf-8")
    out = tmp_path if kind == "folder" else art / "out.jsonl"

    def loaded(*a, **k):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(serving.predictor.Predictor, "__init__", loaded)
    res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(art), "-o", str(out)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert res.output.startswith("error: ") and len(res.output.strip().splitlines()) == 1 and str(out) in res.output
    assert ("is a folder" if kind == "folder" else "not a folder") in res.output
    res = runner.invoke(app, ["predict", "-m", str(tmp_path / "no-bundle"), str(art), "-o", str(out)])
    assert res.exit_code == 2 and str(out) in res.output  # checked even before the bundle


def test_serve_names_a_busy_port_and_suggests_another(tiny_bundle):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = _no_torch(["serve", "-m", str(tiny_bundle), "--port", str(port)])
    assert r["code"] == 2 and not r["execve"], r
    assert f"error: port {port}" in r["out"] and "--port" in r["out"] and "Traceback" not in r["out"]


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_serve_refuses_a_port_out_of_range(tiny_bundle, port):
    r = _no_torch(["serve", "-m", str(tiny_bundle), "--port", port])
    assert r["code"] == 2 and not r["execve"] and "Invalid value for '--port'" in r["out"], r


def test_error_messages_keep_their_closing_quotes(tiny_bundle, tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"id": "a", "sentences": [{"text": "نص.", "label": "maybe"}]}\n', encoding="utf-8")
    res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(f)])
    assert res.exit_code == 2 and res.output.rstrip().endswith("got 'maybe'"), res.output


def test_duplicate_ids_across_inputs_name_both_sources(tiny_bundle, tmp_path):
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "a.txt").write_text(ARTICLE, encoding="utf-8")
    res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(tmp_path / "one"), str(tmp_path / "two")])
    assert res.exit_code == 2 and "duplicate id 'a'" in res.output, res.output
    assert str(tmp_path / "one" / "a.txt") in res.output and str(tmp_path / "two" / "a.txt") in res.output


# ---------------------------------------------------------------- issue 12, point 10: one rule with the service


def test_offsets_follow_the_service_rule_for_a_byte_order_mark(tiny_bundle, tmp_path):
    """Offsets refer to the text less one leading U+FEFF, whether it comes from a .txt file, a JSONL
    "text" field or standard input: the same offsets the service gives for the same text."""
    from serving.brackets import without_bom
    from serving.predictor import Predictor

    for text in (ARTICLE, "\ufeff" + ARTICLE, "\ufeff\ufeff" + ARTICLE):
        expected = [s.as_dict() for s in Predictor(tiny_bundle).predict_texts([without_bom(text)])[0]]
        (tmp_path / "a.txt").write_text(text, encoding="utf-8")
        (tmp_path / "b.jsonl").write_text(json.dumps({"id": "b", "text": text}) + "\n", encoding="utf-8")
        res = runner.invoke(
            app, ["predict", "-m", str(tiny_bundle), str(tmp_path / "a.txt"), str(tmp_path / "b.jsonl")]
        )
        got = [json.loads(l)["sentences"] for l in res.stdout.splitlines()]
        res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), "-"], input=text)
        got.append(json.loads(res.stdout)["sentences"])
        assert got == [expected] * 3, repr(text[:3])


def test_predict_refuses_an_article_without_arabic_like_the_service(tiny_bundle, tmp_path):
    from serving.batch.inputs import NO_ARABIC

    f = tmp_path / "latin.txt"
    f.write_text("The minister opened the plant. [It is a fine day.]", encoding="utf-8")
    res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(f)])
    assert res.exit_code == 2 and res.output == f"error: {f}: {NO_ARABIC}\n", res.output
    j = tmp_path / "mixed.jsonl"
    j.write_text(
        json.dumps({"id": "ok", "text": ARTICLE}, ensure_ascii=False)
        + "\n"
        + json.dumps({"id": "en", "text": "Only English [here]."})
        + "\n",
        encoding="utf-8",
    )
    res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(j)])
    assert res.exit_code == 2 and res.output == f"error: {j}:2: {NO_ARABIC}\n", res.output
