"""The one command line: `serve` and `predict` run without torch; user errors are one line,
bugs keep their traceback, MUDRAJ_DEBUG=1 shows it for everything."""
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tests._paths import REPO
from training.cli import app

runner = CliRunner()

# Run the CLI in a fresh interpreter where importing torch or transformers fails outright.
NO_TORCH = """
import json, os, sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
from typer.testing import CliRunner
from training.cli import app
calls = []
os.execve = lambda exe, cmd, env: calls.append({"cmd": cmd, "model": env.get("MUDRAJ_MODEL")}) or sys.exit(0)
args = json.loads(sys.argv[1])
res = CliRunner().invoke(app, args)
print(json.dumps({"code": res.exit_code, "out": res.output, "exc": repr(res.exception), "execve": calls}))
"""


def _no_torch(args):
    out = subprocess.run([sys.executable, "-c", NO_TORCH, json.dumps(args)], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
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


@pytest.mark.parametrize("cmd", ["train", "export", "predict", "serve", "segment", "backbone", "evaluate",
                                 "calibrate", "prune", "release", "audit", "corpus"])
def test_every_command_has_help(cmd):
    res = runner.invoke(app, [cmd, "--help"])
    assert res.exit_code == 0 and "Usage" in res.output
