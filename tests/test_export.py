"""Export bundles: EMA weights to safetensors + JSON, verified loading, clear refusals."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from voicelab import __version__
from voicelab.config import config_to_dict
from voicelab.errors import VoicelabError, WorkspaceError
from voicelab.export import BUNDLE_VERSION, BundleError, bundle_paths, export_run, load_bundle
from voicelab.models.build import build_gpt, build_sovits
from voicelab.synth import Synthesizer
from voicelab.text import symbols
from voicelab.training import checkpoint as ck
from voicelab.workspace import get_voice

DATA = Path(__file__).resolve().parent / "assets"
REF, REF_TEXT = DATA / "slt_000.wav", "The morning train left the station a few minutes early."


def _shifted(state: dict, delta: float) -> dict:
    return {k: (v + delta if v.is_floating_point() else v.clone()) for k, v in state.items()}


def save_run(voice, cfg, run="main", step=10, stage="gpt", ema=True, seed=0):
    """A checkpoint shaped like the trainer's, with EMA weights that differ from the model's."""
    torch.manual_seed(seed)
    sovits, gpt = build_sovits(cfg), build_gpt(cfg)
    models = {"sovits": sovits.state_dict(), "gpt": gpt.state_dict(), "disc": {}}
    state = {
        ck.K_STAGE: stage, ck.K_STEP: step, ck.K_STAGE_STEP: step, ck.K_EPOCH: 0, ck.K_EPOCH_POS: 0,
        ck.K_MODELS: models, ck.K_OPTIMIZERS: {}, ck.K_SCHEDULERS: {}, ck.K_SCALER: {},
        ck.K_EMA: {"sovits": _shifted(models["sovits"], 1e-3), "gpt": _shifted(models["gpt"], 1e-3)}
        if ema else {},
        ck.K_RNG: {}, ck.K_METRICS: {}, ck.K_CONFIG: config_to_dict(cfg), ck.K_DATASET_HASH: "x",
    }  # fmt: skip
    return ck.save_checkpoint(voice.run_dir(run), state), state


@pytest.fixture
def voice(tmp_home):
    return get_voice("alice").create()


def test_export_writes_ema_weights_and_versions(voice, tiny_cfg):
    _, state = save_run(voice, tiny_cfg, step=12)
    path = export_run(voice)
    assert path == voice.exports / "main-step12.safetensors"
    st, js = bundle_paths(path)
    meta = json.loads(js.read_text())
    assert meta["format_version"] == BUNDLE_VERSION and meta["voicelab_version"] == __version__
    assert meta["symbols_version"] == symbols.SYMBOLS_VERSION
    assert meta["source"]["step"] == 12 and meta["source"]["run"] == "main" and meta["weights"] == "ema"
    assert meta["config"] == config_to_dict(tiny_cfg)
    # a safetensors file: 8-byte header length, then a JSON header (no pickle opcodes)
    raw = st.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert raw[8:9] == b"{" and json.loads(raw[8 : 8 + n])
    b = load_bundle(path)
    for name in ("sovits", "gpt"):
        assert b.weights[name].keys() == state[ck.K_EMA][name].keys()
        for k, v in state[ck.K_EMA][name].items():
            assert torch.equal(b.weights[name][k], v), k


def test_export_falls_back_to_model_weights_without_ema(voice, tiny_cfg):
    _, state = save_run(voice, tiny_cfg, ema=False)
    b = load_bundle(export_run(voice, "main", "plain"))
    assert b.meta["weights"] == "model"
    k = next(iter(state[ck.K_MODELS]["gpt"]))
    assert torch.equal(b.weights["gpt"][k], state[ck.K_MODELS]["gpt"][k])


def test_never_overwrites_and_picks_the_newest_checkpoint(voice, tiny_cfg):
    save_run(voice, tiny_cfg, step=3)
    save_run(voice, tiny_cfg, step=6, seed=1)
    first = export_run(voice, out="v1")
    assert load_bundle(first).meta["source"]["checkpoint"] == "step-00000006.pt"
    before = first.read_bytes()
    with pytest.raises(BundleError, match="already exists"):
        export_run(voice, out="v1")
    assert first.read_bytes() == before
    with pytest.raises(BundleError, match="does not exist"):  # a typo creates no folders
        export_run(voice, out=str(voice.root / "elsewhere" / "v2.safetensors"))
    assert not (voice.root / "elsewhere").exists()
    (voice.root / "elsewhere").mkdir()
    other = export_run(voice, out=str(voice.root / "elsewhere" / "v2.safetensors"))
    assert other == voice.root / "elsewhere" / "v2.safetensors" and other.is_file()
    dotted = export_run(voice, out=str(voice.root / "elsewhere" / "v2.5"))  # a dot in the name
    assert dotted.name == "v2.5.safetensors" and bundle_paths(dotted)[1].name == "v2.5.json"
    assert load_bundle(dotted).meta["source"]["step"] == 6


def test_refuses_stage_one_and_missing_runs(voice, tiny_cfg):
    with pytest.raises(WorkspaceError, match="train it first"):
        export_run(voice)
    save_run(voice, tiny_cfg, stage="sovits")
    with pytest.raises(BundleError, match="has not been trained"):
        export_run(voice)
    assert export_run(voice, allow_untrained_gpt=True).is_file()
    with pytest.raises(WorkspaceError, match="no run 'nope'"):
        export_run(voice, "nope")


@pytest.fixture
def bundle(voice, tiny_cfg) -> Path:
    save_run(voice, tiny_cfg)
    return export_run(voice)


def _edit_meta(path: Path, **changes) -> None:
    js = bundle_paths(path)[1]
    meta = json.loads(js.read_text())
    meta.update(changes)
    js.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format_version": BUNDLE_VERSION + 1}, "update voicelab"),
        ({"voicelab_version": "99.0.0"}, "newer than this one"),
        ({"symbols_version": symbols.SYMBOLS_VERSION + 1}, "phoneme table"),
        ({"format": "something-else"}, "not a voicelab export"),
        ({"config": {"model": {"no_such_key": 1}}}, "cannot read"),
    ],
)
def test_version_mismatches_are_refused_with_advice(bundle, change, message):
    _edit_meta(bundle, **change)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)


def test_missing_and_damaged_files_are_refused(bundle):
    st, js = bundle_paths(bundle)
    blob = st.read_bytes()
    st.write_bytes(blob[: len(blob) // 2])  # truncated copy
    with pytest.raises(BundleError, match="does not match its .json"):
        load_bundle(bundle)
    st.write_bytes(b"not a model at all")
    _edit_meta(bundle, sha256=__import__("hashlib").sha256(b"not a model at all").hexdigest())
    with pytest.raises(BundleError, match="not a readable safetensors"):
        load_bundle(bundle)
    js.write_text("{ broken")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle)
    js.unlink()
    with pytest.raises(BundleError, match="is missing"):
        load_bundle(st)
    with pytest.raises(BundleError, match="is missing"):
        Synthesizer.from_bundle(st.parent / "nothing.safetensors")


def test_weights_that_do_not_fit_their_config_are_refused(bundle):
    _edit_meta(bundle, config={**load_bundle(bundle).meta["config"], "model": {
        **load_bundle(bundle).meta["config"]["model"], "gpt_hidden": 64}})  # fmt: skip
    with pytest.raises(VoicelabError, match="do not fit"):
        Synthesizer.from_bundle(bundle, device="cpu")


def test_round_trip_gives_identical_audio(voice, tiny_cfg):
    path, state = save_run(voice, tiny_cfg)
    bundle = export_run(voice)
    a = Synthesizer.from_bundle(bundle, device="cpu")
    b = Synthesizer.from_checkpoint(path, device="cpu")
    # the same weights built by hand (what the trainer holds in memory)
    sovits, gpt = build_sovits(tiny_cfg), build_gpt(tiny_cfg)
    sovits.load_state_dict(state[ck.K_EMA]["sovits"])
    gpt.load_state_dict(state[ck.K_EMA]["gpt"])
    c = Synthesizer(tiny_cfg, sovits, gpt, device="cpu")
    outs = [s.synthesize("Good morning.", "en", REF, REF_TEXT, seed=5).waveform for s in (a, b, c)]
    assert outs[0].size > 0
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


def test_cli_export_then_synth_with_the_voices_own_reference(voice, tiny_cfg, capsys):
    import shutil

    from voicelab.cli import main
    from voicelab.listfile import Entry, write_list

    save_run(voice, tiny_cfg, step=4)
    shutil.copy(DATA / "slt_001.wav", voice.slices / "a.wav")  # 2.9 s: too short to be picked
    shutil.copy(REF, voice.slices / "b.wav")
    write_list(voice.dataset_list, [Entry(voice.slices / "a.wav", "alice", "en", "Too short."),
                                    Entry(voice.slices / "b.wav", "alice", "en", REF_TEXT)])
    assert main(["export", "--voice", "alice", "-o", "mine"]) == 0
    bundle = voice.exports / "mine.safetensors"
    assert str(bundle) in capsys.readouterr().out
    out = voice.root / "hello.wav"
    args = ["synth", "--model", str(bundle), "--text", "Hello there.", "--seed", "1", "-o", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "b.wav" in captured.err and "real-time factor" in captured.out
    import soundfile as sf

    wav, sr = sf.read(out)
    assert sr == 32000 and wav.size > 0
    assert main(args) == 1 and "already exists" in capsys.readouterr().err
    assert main(["export", "--voice", "alice", "-o", "mine"]) == 1
    assert "already exists" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# issue 16: full disks, odd -o values, tampered bundles
# --------------------------------------------------------------------------------------------


def test_a_full_disk_leaves_no_half_export_and_says_how_much_is_needed(voice, tiny_cfg, monkeypatch):
    """Item 5: an export cut by ENOSPC left an orphan .safetensors that then blocked the same
    export ("already exists") and made synth say the .json was missing."""
    import errno

    import voicelab.export as ex

    save_run(voice, tiny_cfg)
    real = ex.write_bytes_atomic

    def full_on_json(path, data):
        if str(path).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(ex, "write_bytes_atomic", full_on_json)
    with pytest.raises(BundleError, match=r"main-step10.safetensors.*needs [\d.]+ MB") as e:
        export_run(voice)
    assert "free some space" in str(e.value)
    assert list(voice.exports.glob("*")) == []  # neither file: the pair is written as a unit
    monkeypatch.setattr(ex, "write_bytes_atomic", real)
    assert load_bundle(export_run(voice)).meta["source"]["step"] == 10  # the same name works

    # too little free space is seen before anything is written
    monkeypatch.setattr(ex.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(BundleError, match=r"needs [\d.]+ MB and 0.0 MB are free"):
        export_run(voice, out="again")
    assert not (voice.exports / "again.safetensors").exists()


def test_an_orphan_from_an_interrupted_export_is_named_as_such(voice, tiny_cfg):
    save_run(voice, tiny_cfg)
    voice.exports.mkdir(parents=True, exist_ok=True)
    (voice.exports / "main-step10.safetensors").write_bytes(b"half")
    with pytest.raises(BundleError, match="interrupted export"):
        export_run(voice)


@pytest.mark.parametrize("out", ["/", "./", "../", ".", "..", "...", "sub/..", "x/.safetensors"])
def test_outputs_that_name_no_file_are_refused(voice, tiny_cfg, tmp_path, monkeypatch, out):
    """Items 8 and 14: `-o /` and `-o ./` raised ValueError, `-o ../` wrote `...safetensors`."""
    save_run(voice, tiny_cfg)
    (tmp_path / "sub").mkdir()
    (tmp_path / "x").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BundleError, match="is a folder|names no export"):
        export_run(voice, out=out)
    assert not list(tmp_path.parent.glob("*.safetensors")) and not list(tmp_path.rglob("*.safetensors"))


def test_an_empty_run_name_is_refused(voice, tiny_cfg):
    save_run(voice, tiny_cfg)
    with pytest.raises(WorkspaceError, match="run name is empty"):
        export_run(voice, run="")


def _rewrite_weights(path: Path, edit) -> None:
    """Replace the bundle's tensors with edit(tensors) and fix the .json's sha256 to match."""
    import hashlib

    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    st, _ = bundle_paths(path)
    tensors = st_load(st.read_bytes())
    edit(tensors)
    blob = st_save(tensors)
    st.write_bytes(blob)
    _edit_meta(path, sha256=hashlib.sha256(blob).hexdigest())


@pytest.mark.parametrize("value, needle", [(float("nan"), "NaN or infinite"),
                                           (float("inf"), "NaN or infinite"),
                                           (1e30, "far beyond")])
def test_damaged_weight_values_are_refused(bundle, value, needle):
    """Item 8: a bundle with NaN or 1e30 weights loaded and failed later with a traceback."""
    def poison(t):
        k = next(k for k, v in t.items() if k.startswith("gpt.") and v.is_floating_point())
        t[k] = t[k].clone()
        t[k].view(-1)[0] = value

    _rewrite_weights(bundle, poison)
    with pytest.raises(BundleError, match=needle):
        load_bundle(bundle)


def test_a_config_claiming_huge_sizes_is_refused_before_building(bundle, monkeypatch):
    """Item 8: model.hidden=65536 built the model (80 GB) before comparing shapes."""
    import voicelab.models.build as build

    cfg = load_bundle(bundle).meta["config"]
    built = []
    real = build.build_sovits
    monkeypatch.setattr(build, "build_sovits", lambda *a, **k: built.append(
        torch.get_default_device()) or real(*a, **k))  # fmt: skip
    _edit_meta(bundle, config={**cfg, "model": {**cfg["model"], "hidden": 65536}})
    with pytest.raises(BundleError, match=r"do not fit .*has shape \(32, .*the config gives \(65536"):
        Synthesizer.from_bundle(bundle, device="cpu")
    assert built and all(d.type == "meta" for d in built)  # only an empty (meta) model was built
    _edit_meta(bundle, config={**cfg, "model": {**cfg["model"], "gpt_layers": 10**9}})
    with pytest.raises(BundleError, match="gpt_layers=1000000000"):
        load_bundle(bundle)


def test_a_deeply_nested_or_huge_json_is_refused(bundle):
    _, js = bundle_paths(bundle)
    js.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(BundleError, match="nested too deeply"):
        load_bundle(bundle)
    with open(js, "wb") as f:
        f.truncate(17 * 1024 * 1024)
    with pytest.raises(BundleError, match="far too large"):
        load_bundle(bundle)


def test_an_extra_tensor_is_refused(bundle):
    _rewrite_weights(bundle, lambda t: t.__setitem__("gpt.extra", torch.zeros(2)))
    with pytest.raises(BundleError, match="unexpected 'extra'"):
        load_bundle(bundle)
