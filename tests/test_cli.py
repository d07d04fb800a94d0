"""The prepare / slice / features verbs end to end on real speech, their --help and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicelab.cli import main
from voicelab.listfile import read_list

DATA = Path(__file__).resolve().parent / "assets"


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("verb", ["prepare", "slice", "features"])
def test_help(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--voice" in out and "--preset" in out and "--set" in out


def test_prepare_slice_features_end_to_end(tmp_home, capsys):
    wavs = [str(DATA / n) for n in ("slt_000.wav", "slt_001.wav", "rms_000.wav")]
    assert main(["prepare", "--voice", "cli", "--preset", "tiny", *wavs]) == 0
    out = capsys.readouterr().out
    assert "slt_000.wav -> clean/slt_000.wav" in out
    assert "warning: only 3 s of speech: aim for at least 60 s" in out
    assert sorted(p.name for p in (tmp_home / "cli" / "raw").iterdir()) == [
        "rms_000.wav", "slt_000.wav", "slt_001.wav"]  # fmt: skip

    assert main(["slice", "--voice", "cli", "--preset", "tiny"]) == 0
    assert "3 slices" in capsys.readouterr().out
    entries = read_list(tmp_home / "cli" / "slices" / "dataset.list")
    assert len(entries) == 3 and {e.speaker for e in entries} == {"cli"}

    assert main(["features", "--voice", "cli", "--preset", "tiny", "--device", "cpu"]) == 0
    assert "3 computed, 0 already cached" in capsys.readouterr().out
    assert main(["features", "--voice", "cli", "--preset", "tiny", "--device", "cpu"]) == 0
    assert "0 computed, 3 already cached" in capsys.readouterr().out


def test_prepare_with_a_bad_file_exits_nonzero(tmp_home, tmp_path, capsys):
    bad = tmp_path / "oops.mp3"
    bad.write_bytes(b"\0" * 1000)
    code = main(["prepare", "--voice", "mixed", "--preset", "tiny", str(bad), str(DATA / "slt_000.wav")])
    assert code == 1
    captured = capsys.readouterr()
    assert "slt_000.wav -> clean/slt_000.wav" in captured.out  # the good file still went through
    line = error_line(captured.err)
    assert "1 of 2 file(s) could not be prepared" in line and "oops.mp3" in line


def test_slice_from_list(tmp_home, mini_list, capsys):
    assert main(["slice", "--voice", "imported", "--preset", "tiny", "--from-list", str(mini_list)]) == 0
    assert "imported 3 clip(s)" in capsys.readouterr().out
    texts = [e.text for e in read_list(tmp_home / "imported" / "slices" / "dataset.list")]
    assert texts[1] == "She painted the old fence a bright shade of yellow."


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["slice", "--voice", "ghost"], "there is no voice 'ghost'"),
        (["features", "--voice", "ghost"], "there is no voice 'ghost'"),
        (["prepare", "--voice", "../up", str(DATA / "slt_000.wav")], "is not allowed"),
        (["prepare", "--voice", "v", "--set", "audio.denoise_strength=2", str(DATA / "slt_000.wav")],
         "denoise_strength must be between 0 and 1"),
    ],
)  # fmt: skip
def test_failures_are_one_line(tmp_home, capsys, argv, needle):
    assert main(argv) == 1
    assert needle in error_line(capsys.readouterr().err)


def test_features_before_slicing(tmp_home, capsys):
    (tmp_home / "early").mkdir()
    assert main(["features", "--voice", "early"]) == 1
    assert "run `python -m voicelab slice --voice early` first" in error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------------------------
# issue 16: bad inputs to export / synth / eval answered in one line, nothing written
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("out, needle", [
    ("/", "is a folder"), ("./", "is a folder"), ("../", "is a folder"), ("...", "is a folder"),
    ("nowhere/deep/x.wav", "does not exist"),
])  # fmt: skip
def test_synth_output_must_name_a_file_in_an_existing_folder(tmp_home, tmp_path, monkeypatch,
                                                              capsys, out, needle):
    """Items 8 and 14: `-o ../` wrote a file named `...`, a missing folder was created anywhere."""
    cwd = tmp_path / "cwd"
    (cwd / "sub").mkdir(parents=True)
    monkeypatch.chdir(cwd / "sub")
    model = cwd / "sub" / "m.safetensors"
    model.write_bytes(b"x")
    argv = ["synth", "--model", str(model), "--text", "Hi.", "-o", out]
    assert main(argv) == 1
    assert needle in error_line(capsys.readouterr().err)
    assert [p.name for p in cwd.rglob("*")] == ["sub", "m.safetensors"]  # nothing written


@pytest.mark.parametrize("argv, needle", [
    (["synth", "--model", "m.pt", "--text", "Hi.", "-o", "a.wav", "--device", "cuda_evil"],
     "is not a device"),
    (["eval", "--model", "m.pt", "--voice", "v", "--device", "cudaX"], "is not a device"),
    (["features", "--voice", "v", "--set", "train.device=cuda-anything"], "train.device='cuda-anything'"),
    (["export", "--voice", "v", "--run", ""], "the run name is empty"),
    (["export", "--voice", "v", "-o", "/"], "is a folder"),
    (["export", "--voice", "v", "-o", "./"], "is a folder"),
])  # fmt: skip
def test_bad_devices_runs_and_outputs_are_one_line(tmp_home, tmp_path, monkeypatch, capsys, argv,
                                                   needle):
    from voicelab.workspace import get_voice

    get_voice("v").create()
    monkeypatch.chdir(tmp_path)
    if argv[0] == "export":  # export checks its run and -o after finding a checkpoint
        from tests.test_export import save_run
        from voicelab.config import load_config

        save_run(get_voice("v"), load_config("tiny"))
    assert main(argv) == 1
    assert needle in error_line(capsys.readouterr().err)
