"""Objective voice-cloning metrics: MCD with DTW, F0 RMSE, speaker similarity, WER.

Every function takes plain audio (np.float32 [T] plus its sample rate) and returns a small typed
result, so the eval run, the benchmarks and the tests all call the same code.

- `mcd_dtw`: mel-cepstral distortion (dB) between a reference and a test utterance of the same
  sentence, after dynamic time warping. The cepstrum is the DCT-II (orthonormal) of a 16 kHz,
  40-band log-mel spectrum, coefficients 1..24 (c0, the loudness, is left out as usual). This is
  the MFCC-style MCD many TTS papers use when SPTK is not at hand; absolute values are not
  comparable with SPTK/WORLD mel-cepstrum MCDs, but comparisons inside voicelab are.
- `f0_rmse`: pitch error (Hz and cents) over frames voiced in both, aligned by the same DTW path,
  plus the voicing decision error. Pitch by probabilistic YIN (librosa.pyin).
- `speaker_similarity`: resemblyzer cosine (voicelab.audio.dvector).
- `wer`: pocketsphinx word error rate through voicelab.text.asr.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from voicelab.audio.spectral import mel_power
from voicelab.errors import AudioError, VoicelabError

ANALYSIS_SR = 16000
HOP = 160  # 10 ms frames at 16 kHz
N_FFT = 512
WIN = 400  # 25 ms
N_MELS = 40
N_CEPS = 24  # c1..c24
TRIM_DB = 40.0  # leading/trailing audio quieter than peak - 40 dB is silence, not speech
# 10 / ln(10) * sqrt(2): turns a Euclidean distance of natural-log cepstra into dB (Kubichek).
MCD_SCALE = 10.0 / np.log(10.0) * np.sqrt(2.0)
F0_MIN, F0_MAX = 50.0, 600.0


@dataclass(frozen=True)
class MCDResult:
    mcd_db: float  # mean mel-cepstral distortion along the DTW path
    frames_ref: int
    frames_test: int
    path_length: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class F0Result:
    rmse_hz: float  # NaN when no frame is voiced in both
    rmse_cents: float
    voiced_both: int  # frames voiced in both along the DTW path
    vde: float  # voicing decision error: share of path frames where the two disagree

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class WERResult:
    wer: float
    reference: str
    hypothesis: str

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Front end shared by MCD and F0
# --------------------------------------------------------------------------------------------


def prepare(audio: np.ndarray, sr: int) -> np.ndarray:
    """[T] at `sr` -> [T'] float32 mono at 16 kHz with leading/trailing silence removed."""
    import soxr

    wav = np.asarray(audio, dtype=np.float32)
    if wav.ndim != 1:
        raise AudioError(f"metrics: expected mono audio [T], got shape {wav.shape}")
    if wav.size == 0 or not np.all(np.isfinite(wav)):
        raise AudioError("metrics: the audio is empty or contains NaN/Inf samples")
    if np.max(np.abs(wav)) < 1e-4:
        raise AudioError("metrics: the audio is silent (peak below -80 dBFS)")
    if sr != ANALYSIS_SR:
        wav = soxr.resample(wav, sr, ANALYSIS_SR).astype(np.float32)
    # Silence at the edges would be matched to silence by DTW and dilute the distortion.
    wav = trim_silence(wav)
    if len(wav) < N_FFT:
        raise AudioError(f"metrics: under {N_FFT / ANALYSIS_SR * 1000:.0f} ms of sound to score")
    return wav


def trim_silence(wav: np.ndarray, top_db: float = TRIM_DB) -> np.ndarray:
    """Cut leading/trailing frames whose RMS is `top_db` below the loudest frame. [T] -> [T'].

    Plain numpy rather than librosa.effects.trim, whose first call costs seconds of numba JIT.
    """
    n = 1 + max(len(wav) - WIN, 0) // HOP
    idx = np.arange(WIN)[None, :] + HOP * np.arange(n)[:, None]
    frames = np.pad(wav, (0, max(WIN - len(wav), 0)))[np.minimum(idx, max(len(wav), WIN) - 1)]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-10) / max(rms.max(), 1e-10)) > -top_db)
    if loud.size == 0:
        return wav
    return wav[loud[0] * HOP : min(len(wav), loud[-1] * HOP + WIN)]


def mel_cepstrum(wav16: np.ndarray) -> np.ndarray:
    """[T] at 16 kHz -> [frames, N_CEPS] cepstra c1..c24 (frames = T // HOP + 1, centred)."""
    from scipy.fft import dct

    mel = mel_power(wav16, ANALYSIS_SR, N_FFT, WIN, HOP, N_MELS)  # [N_MELS, frames]
    # Floor 60 dB below the utterance's loudest band: pauses of near-digital silence would
    # otherwise give log values far below anything audible and dominate the distortion. The
    # floor is relative, so the two utterances' levels do not matter (a level only moves c0).
    logmel = np.log(np.maximum(mel, max(float(mel.max()), 1e-20) * 1e-6))
    ceps = dct(logmel, type=2, axis=0, norm="ortho")  # [N_MELS, frames]
    # 0.5 * log power = log amplitude, the convention Kubichek's formula assumes
    return (0.5 * ceps[1 : N_CEPS + 1]).T.astype(np.float64)


def dtw_path(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic time warping of [N, D] against [M, D] with Euclidean frame cost.

    Steps (1,1), (1,0), (0,1). Returns (path [L, 2] of index pairs from (0,0) to (N-1,M-1),
    frame costs along it [L]). Each row is filled in one vectorised pass: within row i,
    D[i,j] = c[i,j] + min(a_j, D[i,j-1]) with a_j = min(D[i-1,j-1], D[i-1,j]) unrolls to
    S_j + min_{k<=j}(a_k - S_{k-1}), S the running sum of c over the row.
    """
    from scipy.spatial.distance import cdist

    if len(x) == 0 or len(y) == 0:
        raise VoicelabError("dtw: one of the sequences has no frames")
    cost = cdist(x, y, metric="euclidean")
    n, m = cost.shape
    acc = np.empty_like(cost)
    acc[0] = np.cumsum(cost[0])
    for i in range(1, n):
        prev = acc[i - 1]
        a = np.empty(m)
        a[0] = prev[0]
        a[1:] = np.minimum(prev[:-1], prev[1:])
        s = np.cumsum(cost[i])
        s_before = np.concatenate(([0.0], s[:-1]))
        acc[i] = s + np.minimum.accumulate(a - s_before)
    # backtrack: prefer the diagonal on ties so identical sequences give the identity path
    i, j = n - 1, m - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            d, u, l = acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]
            if d <= u and d <= l:
                i, j = i - 1, j - 1
            elif u <= l:
                i -= 1
            else:
                j -= 1
        path.append((i, j))
    p = np.array(path[::-1], dtype=np.int64)
    return p, cost[p[:, 0], p[:, 1]]


def mcd_dtw(ref: np.ndarray, ref_sr: int, test: np.ndarray, test_sr: int) -> MCDResult:
    """Mel-cepstral distortion (dB) of `test` against `ref`, both [T] audio of one sentence.

    0 for identical audio (and for a mere change of level). On the fixtures, with this front end:
    the same clip plus noise 50 dB down ~4 dB, another voice reading the same sentence 27-31 dB.
    """
    cr = mel_cepstrum(prepare(ref, ref_sr))
    ct = mel_cepstrum(prepare(test, test_sr))
    path, frame_cost = dtw_path(cr, ct)
    return MCDResult(
        mcd_db=float(MCD_SCALE * frame_cost.mean()),
        frames_ref=len(cr),
        frames_test=len(ct),
        path_length=len(path),
    )


def f0_track(wav16: np.ndarray) -> np.ndarray:
    """[T] at 16 kHz -> F0 in Hz per 10 ms frame [T // HOP + 1]; NaN where unvoiced."""
    import librosa

    f0, voiced, _ = librosa.pyin(
        wav16, fmin=F0_MIN, fmax=F0_MAX, sr=ANALYSIS_SR, frame_length=1024, hop_length=HOP,
        center=True,
    )
    return np.where(voiced, f0, np.nan)


def f0_rmse(ref: np.ndarray, ref_sr: int, test: np.ndarray, test_sr: int) -> F0Result:
    """F0 RMSE (Hz, cents) of `test` against `ref` over frames voiced in both, DTW-aligned."""
    wr, wt = prepare(ref, ref_sr), prepare(test, test_sr)
    path, _ = dtw_path(mel_cepstrum(wr), mel_cepstrum(wt))
    fr, ft = f0_track(wr), f0_track(wt)
    # pyin and the mel front end both give T // HOP + 1 centred frames; clamp to be safe
    a = fr[np.minimum(path[:, 0], len(fr) - 1)]
    b = ft[np.minimum(path[:, 1], len(ft) - 1)]
    va, vb = np.isfinite(a), np.isfinite(b)
    both = va & vb
    vde = float(np.mean(va != vb))
    if not both.any():
        return F0Result(float("nan"), float("nan"), 0, vde)
    d = a[both] - b[both]
    cents = 1200.0 * np.log2(b[both] / a[both])
    return F0Result(
        rmse_hz=float(np.sqrt(np.mean(d**2))),
        rmse_cents=float(np.sqrt(np.mean(cents**2))),
        voiced_both=int(both.sum()),
        vde=vde,
    )


def speaker_similarity(a: np.ndarray, a_sr: int, b: np.ndarray, b_sr: int) -> float:
    """resemblyzer cosine between two utterances (1 = same direction; same voice ~0.8+)."""
    from voicelab.audio import dvector

    return dvector.cosine(dvector.embed(a, a_sr), dvector.embed(b, b_sr))


def wer(reference_text: str, audio: np.ndarray, sr: int) -> WERResult:
    """Recognise `audio` with pocketsphinx (offline, English) and score it against the text."""
    from voicelab.text import asr

    hyp = asr.recognize(audio, sr)
    return WERResult(wer=float(asr.word_error_rate(reference_text, hyp)), reference=reference_text,
                     hypothesis=hyp)


def text_wer(reference_text: str, hypothesis: str) -> float:
    """Word error rate of a hypothesis transcript (normalised words), via voicelab.text.asr."""
    from voicelab.text import asr

    return float(asr.word_error_rate(reference_text, hypothesis))


def take_speech_intervals(take: Path) -> list[tuple[float, float]]:
    """True sentence times (s) of a long fixture take (`<take>.json` beside it), trimmed to where
    each sentence's own noise-free recording (`../<take stem>/metadata.list`) is above -50 dBFS:
    the .json times include the TTS voice's leading and trailing silence (up to 0.5 s), which is
    not speech a slicer must keep whole. The reference the slicer is scored against."""
    import soundfile as sf

    meta = take.parent.parent / take.stem / "metadata.list"
    by_text = {ln.split("|")[3]: ln.split("|")[0] for ln in meta.read_text().splitlines() if ln}
    out = []
    for t in json.loads(take.with_suffix(".json").read_text()):
        y, sr = sf.read(meta.parent / by_text[t["text"]], dtype="float32")
        on = np.flatnonzero(np.abs(y) > 10 ** (-50 / 20))
        out.append((t["start"] + on[0] / sr, t["end"] - (len(y) - on[-1]) / sr))
    return out
