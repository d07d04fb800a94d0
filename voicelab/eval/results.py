"""What an evaluation produces: one `ItemScore` per sentence and the `EvalResult` around them.

Plain typed data, in their own module so that eval/evaluate.py (which computes them) and
eval/report.py (which writes them out) both import it and not each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ItemScore:
    """The scores of one synthesised sentence (None where a metric does not apply or failed)."""

    index: int
    text: str
    lang: str
    real: str | None
    audio_s: float
    gen_s: float
    first_audio_s: float
    rtf: float
    hypothesis: str | None = None
    wer: float | None = None
    real_hypothesis: str | None = None
    real_wer: float | None = None
    sim_target: float | None = None
    sim_others: dict[str, float] = field(default_factory=dict)
    real_sim_target: float | None = None  # ceiling: the real recording against the target
    mcd_db: float | None = None
    f0_rmse_hz: float | None = None
    f0_rmse_cents: float | None = None
    vde: float | None = None
    audio_file: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class EvalResult:
    """Every sentence's scores, their `summary` (averages + acceptance `checks`) and `meta`
    (voice, model, reference, seed, device, machine), as written to eval.json."""

    items: list[ItemScore]
    summary: dict[str, Any]
    excluded: list[str] = field(default_factory=list)  # sentences dropped (seen in training)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"meta": self.meta, "summary": self.summary, "excluded": self.excluded,
                "items": [asdict(i) for i in self.items]}  # fmt: skip
