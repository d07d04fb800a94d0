"""synthesize(): determinism, sentence joining, reference checks, the token cap, speed.

Tiny untrained models (the synthesis path does not care whether the weights are trained) and
the real flite clips in tests/assets as references.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from voicelab.errors import AudioError, VoicelabError
from voicelab.models.build import build_gpt, build_sovits
from voicelab.synth import REF_MAX_S, Synthesizer

DATA = Path(__file__).resolve().parent / "assets"
REF = DATA / "slt_000.wav"  # 3.2 s
REF_TEXT = "The morning train left the station a few minutes early."
SHORT_REF = DATA / "slt_001.wav"  # 2.9 s: too short


@pytest.fixture(scope="module")
def synth() -> Synthesizer:
    from voicelab.config import load_config

    cfg = load_config("tiny", ["train.device=cpu"])
    torch.manual_seed(0)
    return Synthesizer(cfg, build_sovits(cfg), build_gpt(cfg), device="cpu")


def test_same_seed_same_audio_and_typed_result(synth):
    threads = torch.get_num_threads()
    a = synth.synthesize("Hello there.", "en", REF, REF_TEXT, seed=11)
    assert torch.get_num_threads() == threads  # synth.cpu_threads applies only inside the call
    b = synth.synthesize("Hello there.", "en", REF, REF_TEXT, seed=11)
    c = synth.synthesize("Hello there.", "en", REF, REF_TEXT, seed=12)
    assert a.waveform.dtype == np.float32 and a.waveform.ndim == 1 and a.waveform.size > 0
    np.testing.assert_array_equal(a.waveform, b.waveform)
    assert a.waveform.shape != c.waveform.shape or not np.array_equal(a.waveform, c.waveform)
    sr, wav = a  # unpacks like Gradio's (sample_rate, samples)
    assert sr == 32000 and wav is a.waveform and a.seed == 11
    assert 0 < a.first_audio_s <= a.gen_s and np.isfinite(a.rtf) and a.rtf > 0
    assert np.abs(a.waveform).max() <= 1.0


def test_sentences_are_joined_with_the_configured_pause(synth):
    r = synth.synthesize("Good morning. See you soon!", "en", REF, seed=3)
    assert [s.text for s in r.sentences] == ["Good morning.", "See you soon!"]
    pause = int(round(synth.cfg.synth.sentence_pause_s * 32000))
    first = int(round(r.sentences[0].seconds * 32000))
    total = sum(int(round(s.seconds * 32000)) for s in r.sentences) + pause
    assert r.waveform.size == total
    assert not r.waveform[first : first + pause].any()  # exact silence between the sentences
    assert r.reference_s == pytest.approx(3.18, abs=0.02)


def test_reference_too_short_is_refused_and_too_long_is_trimmed(synth):
    with pytest.raises(AudioError, match="2.9 s long; it needs 3 to 10 s"):
        synth.synthesize("Hello.", "en", SHORT_REF, seed=1)
    a, sr = sf.read(DATA / "slt_000.wav", dtype="float32")
    b, _ = sf.read(DATA / "rms_000.wav", dtype="float32")
    long = np.concatenate([a, b, a, b])  # about 14 s
    r = synth.synthesize("Hello.", "en", (sr, long), reference_text="words that cover it all", seed=1)
    assert r.reference_s == REF_MAX_S
    assert any("first 10 s are used" in w and "text is ignored" in w for w in r.warnings)


def test_array_reference_matches_the_file(synth):
    pcm, sr = sf.read(REF, dtype="int16")
    stereo = np.stack([pcm, pcm], axis=1)  # [T, 2] int16, as Gradio's microphone gives
    a = synth.synthesize("Hi.", "en", REF, REF_TEXT, seed=4).waveform
    b = synth.synthesize("Hi.", "en", (sr, stereo), REF_TEXT, seed=4).waveform
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=2e-3)


def test_token_cap_ends_generation_with_a_warning(synth):
    eos = synth.gpt.eos_id
    with torch.no_grad():
        old = synth.gpt.head.bias[eos].item()
        synth.gpt.head.bias[eos] = -100.0  # an undertrained GPT that never says EOS
    try:
        r = synth.synthesize("Hi there.", "en", REF, REF_TEXT, seed=2)
    finally:
        with torch.no_grad():
            synth.gpt.head.bias[eos] = old
    (s,) = r.sentences
    assert s.hit_cap and s.n_tokens == int(np.ceil(synth.cfg.synth.max_tokens_per_phone * s.n_phones))
    assert any("without ending by itself" in w for w in r.warnings)


def test_speed_scales_the_length(synth):
    normal = synth.synthesize("One two three.", "en", REF, REF_TEXT, seed=9)
    fast = synth.synthesize("One two three.", "en", REF, REF_TEXT, seed=9, speed=2.0)
    n = normal.sentences[0].n_tokens
    assert fast.sentences[0].n_tokens == n  # same tokens: speed only changes the decoder
    assert normal.waveform.size == 2 * n * 640
    assert fast.waveform.size == max(1, round(n)) * 640


def test_bad_requests_get_clear_messages(synth):
    with pytest.raises(VoicelabError, match="text is empty"):
        synth.synthesize("   ", "en", REF)
    with pytest.raises(VoicelabError, match="nothing to speak"):
        synth.synthesize("... !!", "en", REF)
    with pytest.raises(VoicelabError, match="reference clip is needed"):
        synth.synthesize("Hello.", "en", None)
    with pytest.raises(VoicelabError, match="top_k=0"):
        synth.synthesize("Hello.", "en", REF, top_k=0)
    with pytest.raises(VoicelabError, match="speed"):
        synth.synthesize("Hello.", "en", REF, speed=9)
    with pytest.raises(AudioError, match="silent"):
        synth.synthesize("Hello.", "en", (16000, np.zeros(16000 * 4, dtype=np.float32)))
    with pytest.raises(VoicelabError, match="no such file|does not exist|not found"):
        synth.synthesize("Hello.", "en", DATA / "missing.wav")



@pytest.mark.parametrize("kwargs, needle", [
    ({"temperature": float("nan")}, "temperature=nan"),
    ({"top_p": float("nan")}, "top_p=nan"),
    ({"repetition_penalty": float("inf")}, "repetition_penalty=inf"),
    ({"speed": float("nan")}, "speed=nan"),
    ({"seed": 2**64}, "seed="),
    ({"seed": -1}, "seed=-1"),
])
def test_non_finite_settings_and_huge_seeds_are_refused(synth, kwargs, needle):
    """Issue 16 item 8: NaN passed every range check and a seed past 64 bits reached torch."""
    with pytest.raises(VoicelabError, match=needle):
        synth.synthesize("Hello.", "en", REF, **kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_synthesis_is_seeded_and_matches_the_uncached_gpt(synth):
    cuda = Synthesizer(synth.cfg, build_sovits(synth.cfg), build_gpt(synth.cfg), device="cuda")
    a = cuda.synthesize("Hello there.", "en", REF, REF_TEXT, seed=5)
    b = cuda.synthesize("Hello there.", "en", REF, REF_TEXT, seed=5)
    np.testing.assert_array_equal(a.waveform, b.waveform)
    ref = cuda.prepare_reference(REF, REF_TEXT, "en")
    ids = torch.tensor(ref.prompt_phones, device="cuda")
    langs = torch.tensor(ref.prompt_langs, device="cuda")
    res = cuda.gpt.generate(ids, langs, ref.style[0], ref.prompt_tokens, max_new_tokens=20,
                            generator=torch.Generator("cuda").manual_seed(1), return_logits=True)
    full = cuda.gpt.score(ids, langs, ref.style[0], torch.cat([ref.prompt_tokens, res.tokens]))
    n, steps = ref.prompt_tokens.numel(), res.step_logits.shape[0]
    torch.testing.assert_close(res.step_logits, full[n : n + steps], atol=1e-3, rtol=1e-3)


def test_non_finite_audio_is_an_error_naming_damaged_weights():
    from voicelab.config import load_config

    cfg = load_config("tiny", ["train.device=cpu"])
    torch.manual_seed(0)
    sovits = build_sovits(cfg)
    with torch.no_grad():
        for p in sovits.decoder.parameters():
            p.fill_(float("nan"))  # a decoder that diverged
    broken = Synthesizer(cfg, sovits, build_gpt(cfg), device="cpu")
    with pytest.raises(VoicelabError, match="NaN or infinite audio: its weights are damaged"):
        broken.synthesize("Hello there.", "en", REF, REF_TEXT, seed=1)


def _fake_result(peak: float):
    from voicelab.synth import SynthResult

    wav = np.zeros(32000, np.float32)
    wav[100] = peak
    return SynthResult(32000, wav, 7, 0.1, 0.1)


@pytest.mark.parametrize("peak_dbfs", [-59.0, -61.0, None])
def test_the_silence_floor_is_the_speak_tabs(peak_dbfs):
    """The CLI refuses as silence exactly what the Speak tab's check calls silent."""
    from voicelab.synth import check_audible
    from voicelab.ui.quality import check_speech

    peak = 0.0 if peak_dbfs is None else 10 ** (peak_dbfs / 20)
    r = _fake_result(peak)
    tab_says_silent = any("silent" in w for w in check_speech("Hello.", r.waveform, 32000).warnings)
    if tab_says_silent:
        with pytest.raises(VoicelabError, match="silence .* not trained enough"):
            check_audible(r)
    else:
        check_audible(r)
    assert tab_says_silent == (peak_dbfs != -59.0)


def test_the_cli_writes_no_file_for_silence(tmp_path, monkeypatch, capsys):
    from voicelab import cli
    from voicelab.synth import Synthesizer as S

    class Silent:
        def synthesize(self, *a, **k):
            return _fake_result(0.0)

    model = tmp_path / "m.safetensors"
    model.write_bytes(b"x")  # never read: the synthesizer is the fake above
    monkeypatch.setattr(S, "from_bundle", classmethod(lambda cls, *a, **k: Silent()))
    out = tmp_path / "out.wav"
    code = cli.main(["synth", "--model", str(model), "--text", "Hello there.", "--ref", str(REF),
                     "-o", str(out)])  # fmt: skip
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err
    assert "error: the model produced 1.0 s of silence" in err and "nothing was written" in err
