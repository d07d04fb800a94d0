"""The CLI answers simple argument mistakes before loading torch, and draws progress bars only
on a terminal (issue 15, items 14 and 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "assets"

PROBE = """
import sys
from voicelab.cli import main
rc = main(sys.argv[1:])
print("TORCH" if "torch" in sys.modules else "NO-TORCH", rc)
"""


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, VOICELAB_HOME=str(home), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, needle", [
    (["synth", "--model", "{model}", "--text", "hi", "-o", "{existing}"], "already exists"),
    (["synth", "--model", "/no/such.safetensors", "--text", "hi", "-o", "{new}"], "does not exist"),
    (["synth", "--model", "{model}", "--text", "hi", "-o", "{new}", "--device", "gpu"], "not a device"),
    (["eval", "--model", "/no/such.pt", "--voice", "v"], "does not exist"),
    (["features", "--voice", "nobody"], "no voice 'nobody'"),
    (["train", "--voice", "nobody", "--preset", "tiny"], "no voice 'nobody'"),
    (["train", "--voice", "v", "--preset", "tiny", "--run", ""], "run '' is not allowed"),
    (["prepare", "--voice", "newcomer", "/no/such.wav"], "no such file"),
])  # fmt: skip
def test_argument_mistakes_are_answered_before_torch_loads(tmp_path, args, needle):
    home = tmp_path / "home"
    (home / "v" / "raw").mkdir(parents=True)
    model, existing = tmp_path / "m.safetensors", tmp_path / "exists.wav"
    model.write_bytes(b"x")
    existing.write_bytes(b"x")
    argv = [a.format(model=model, existing=existing, new=tmp_path / "new.wav") for a in args]
    r = _run(argv, home)
    assert needle in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stdout.split() == ["NO-TORCH", "1"], r.stdout
    assert not (home / "newcomer").exists(), "a refused prepare creates no voice"


def test_piped_output_has_no_progress_bars(tmp_path):
    env = dict(os.environ, VOICELAB_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "voicelab", "prepare", "--voice", "p",
                        str(ASSETS / "slt_000.wav")], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "%|" not in r.stderr, r.stderr
    assert "slt_000" in r.stdout
