"""The slicer: scored against the true sentence times of the long noisy takes (no sentence may be
cut in the middle of its speech), plus the GPT-SoVITS rules, max_length, min_keep and VAD mode."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from takes import cleaned_take, speech_intervals

from voicelab.audio.slicer import frame_rms, rms_intervals, slice_intervals
from voicelab.config import SliceConfig

SR = 32000


def score(intervals, truth, sr=SR):
    """Check slices against true speech; returns (start errors, end errors) in ms.

    A start error is how much silence a slice keeps before its first sentence (>= 0 means the
    sentence's onset is inside), an end error how much it keeps after its last one.
    """
    cuts = sorted({a for a, _ in intervals} | {b for _, b in intervals})
    for c in cuts:
        for s, e in truth:
            assert not s * sr < c < e * sr, f"cut at {c / sr:.2f} s falls inside speech {s:.2f}-{e:.2f}"
    starts, ends = [], []
    for s, e in truth:  # every sentence lies whole inside exactly one slice
        holders = [(a, b) for a, b in intervals if a <= s * sr and e * sr <= b]
        assert len(holders) == 1, f"sentence {s:.2f}-{e:.2f} s is not inside one slice"
    for a, b in intervals:
        inside = [(s, e) for s, e in truth if a <= s * sr and e * sr <= b]
        assert inside, f"slice {a / sr:.2f}-{b / sr:.2f} s holds no sentence"
        starts.append(1000 * (inside[0][0] - a / sr))
        ends.append(1000 * (b / sr - inside[-1][1]))
    return starts, ends


@pytest.mark.parametrize("name", ["flite_slt", "flite_rms", "pico_en-US"])
def test_slicer_score_on_long_takes(name, capsys):
    path, _, _, res = cleaned_take(name)
    cfg = SliceConfig()
    intervals = slice_intervals(res.audio, res.sample_rate, cfg)
    starts, ends = score(intervals, speech_intervals(path))
    lengths = [(b - a) / SR for a, b in intervals]
    assert max(lengths) <= cfg.max_length_s and min(lengths) >= cfg.min_keep_s
    # at most max_sil_kept (+ one hop) of silence stays on either side of the speech
    assert 0 <= min(starts) and max(starts) <= cfg.max_sil_kept_ms + cfg.hop_ms
    assert 0 <= min(ends) and max(ends) <= cfg.max_sil_kept_ms + cfg.hop_ms
    with capsys.disabled():
        print(
            f"\n[slicer score] {name}: {len(intervals)} slices, no sentence cut; silence kept "
            f"before speech {np.mean(starts):.0f} ms mean / {max(starts):.0f} max, after "
            f"{np.mean(ends):.0f} ms mean / {max(ends):.0f} max"
        )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # silero's importlib / jit.load use
def test_vad_mode_on_real_speech():
    path, _, _, res = cleaned_take("flite_slt")
    from voicelab.audio.vad import vad_intervals

    full = speech_intervals(path)
    # the first 7 sentences keep the test short; end in the middle of the pause after them
    n = int((full[6][1] + full[7][0]) / 2 * SR)
    truth = full[:7]
    intervals = vad_intervals(res.audio[:n], SR, SliceConfig(method="vad"))
    starts, ends = score(intervals, truth)
    # max_sil_kept plus silero's own 30 ms padding of each segment
    assert len(intervals) >= 3 and max(starts) <= 560 and max(ends) <= 560


def bursts(spec: list[tuple[str, float]], seed: int = 0) -> np.ndarray:
    """'s' = speech-like noise at about -20 dBFS, 'q' = near silence (-70 dBFS)."""
    rng = np.random.default_rng(seed)
    parts = []
    for kind, secs in spec:
        level = 0.1 if kind == "s" else 3e-4
        parts.append(rng.normal(0, level, int(secs * SR)).astype(np.float32))
    return np.concatenate(parts)


def test_cuts_in_long_pauses_and_trims_leading_silence():
    x = bursts([("q", 2.0), ("s", 4.5), ("q", 1.0), ("s", 4.2), ("q", 2.0)])
    iv = rms_intervals(x, SR, SliceConfig())
    assert len(iv) == 2
    (a1, b1), (a2, b2) = iv
    # leading silence: at most max_sil_kept (0.5 s) stays before the speech at 2.0 s
    assert 1.45 <= a1 / SR <= 2.0 and 6.5 <= b1 / SR <= 7.05
    # the 1 s pause is split between the two clips, each keeping at most 0.5 s of it
    assert b1 <= a2 and 6.95 <= a2 / SR <= 7.55 and 11.7 <= b2 / SR <= 12.25


def test_short_pauses_do_not_cut_and_min_length_holds():
    # 0.2 s pauses are under min_interval (0.3 s); a 0.5 s pause after only 1.5 s is under min_length
    x = bursts([("s", 1.5), ("q", 0.5), ("s", 2.0), ("q", 0.2), ("s", 2.0), ("q", 1.0), ("s", 1.0)])
    iv = rms_intervals(x, SR, SliceConfig())
    assert len(iv) == 2
    assert iv[0][0] == 0 and 6.2 <= iv[0][1] / SR <= 6.75


def test_max_length_splits_at_the_quietest_point():
    x = bursts([("s", 9.0), ("q", 0.25), ("s", 11.0)])  # 20 s with one 0.25 s dip: no RMS cut
    cfg = SliceConfig()
    assert len(rms_intervals(x, SR, cfg)) == 1
    iv = slice_intervals(x, SR, cfg)
    assert len(iv) == 2
    assert 9.0 <= iv[0][1] / SR <= 9.25  # cut inside the dip, not at 12 s
    assert all((b - a) / SR <= cfg.max_length_s for a, b in iv)
    assert iv[0][0] == 0 and iv[-1][1] == len(x)


def test_min_keep_drops_blips():
    # the blip's slice is 0.2 s plus at most 0.5 s of kept silence on each side: < 1.5 s
    x = bursts([("s", 5.0), ("q", 1.5), ("s", 0.2), ("q", 1.5)])
    iv = slice_intervals(x, SR, SliceConfig(min_length_ms=300, min_keep_s=1.5))
    assert len(iv) == 1 and iv[0][1] / SR < 6.0
    kept = slice_intervals(x, SR, SliceConfig(min_length_ms=300, min_keep_s=0.1))
    assert len(kept) == 2


def test_frame_rms_matches_librosa():
    x = bursts([("s", 0.5), ("q", 0.3)], seed=1)
    ours = frame_rms(x, 1280, 320)
    ref = librosa.feature.rms(y=x, frame_length=1280, hop_length=320, center=True, pad_mode="constant")[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)
