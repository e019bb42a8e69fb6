"""The text domain's command options: ``diffkit sample`` and ``diffkit evaluate`` flags.

Each field becomes a flag (``infill_span`` -> ``--infill-span``); ``None`` means not given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from diffkit.domain import EvaluateOptions, option


@dataclass(frozen=True)
class TextSampleOptions:
    """``diffkit sample`` flags of the text domain."""

    cond: str | None = option(
        None, "Condition text, e.g. an E2E MR 'name[The Eagle], food[French]'."
    )
    guidance: float | None = option(
        None,
        "Classifier-free guidance scale on --cond: 0 unconditional, 1 conditional.",
        low=-100.0,
        high=100.0,
    )
    infill: str | None = option(None, "Template whose ___ blanks are filled, the rest kept.")
    infill_span: int = option(3, "Tokens per ___ blank of --infill.", low=1, high=10_000)
    length: int | None = option(None, "Exact number of tokens of every sample.", low=1, high=10**6)
    temperature: float | None = option(
        None,
        "Sampling temperature of the AR and masked models (0: argmax); default 1.",
        low=0.0,
        high=100.0,
    )
    drafts: int = option(
        1,
        "Draw this many texts per sample and keep the one the others agree with most "
        "(minimum Bayes risk under BLEU); costs that many times the sampling.",
        low=1,
        high=1000,
    )
    slot_rerank: bool = option(
        False,
        "With --drafts and --cond: keep the drafts that leave out the fewest of the "
        "condition's slot values (an E2E MR's key[value] pairs), then their consensus.",
    )
    clamp: bool | None = option(
        None, "Snap each x0 estimate to the nearest embedding; default on for diffusion_lm only."
    )


@dataclass(frozen=True)
class TextEvaluateOptions(EvaluateOptions):
    """``diffkit evaluate`` flags of the text domain."""

    teacher: Path | None = option(
        None, "AR run (diffkit train --domain text --model ar) scoring samples: lm-score."
    )
    guidance: float | None = option(
        None, "Guidance scale of the mr->ref samples; default the run's.", low=-100.0, high=100.0
    )
    drafts: int = option(
        1, "mr->ref: the consensus of this many drafts per MR (as sample --drafts).", low=1,
        high=1000,
    )  # fmt: skip
    slot_rerank: bool = option(
        False, "mr->ref: the drafts missing the fewest MR slot values first (as sample's)."
    )
