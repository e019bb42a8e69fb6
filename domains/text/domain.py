"""The text domain: its ``[model]`` config, data, network, loss and sample files (wiring only).

``diffkit train --domain text`` trains a Diffusion-LM denoiser (Li et al. 2022) on
sentencepiece tokens of the built-in restaurant grammar, or of ``--data`` (``.txt``,
``.csv``, ``.tsv``, ``.jsonl`` with ``--text-column`` and optional ``--cond-column``).
``--model cdcd`` trains the cross-entropy / score-interpolation recipe (Dieleman et al.
2022), ``--model ar`` the causal transformer baseline on the same engine. The tokenizer is
trained in process and travels inside the checkpoint's settings (base64 proto).
Sampling lives in :mod:`.generate`, metrics in :mod:`.evaluate`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from diffkit.domain import Domain, DomainData
from diffkit.errors import ConfigError, check_choice

from . import data as text_data
from .bench import cases as bench_cases
from .evaluate import evaluate
from .generate import generate_texts, tensor_to_texts, texts_to_tensor, tokenizer_of
from .length import LENGTH_KEYS, key_weights
from .loss import TimeWarp, text_loss
from .network import TextDenoiser
from .options import TextEvaluateOptions, TextSampleOptions
from .tokenizer import MODEL_TYPES, Tokenizer, train_tokenizer

Tensor = torch.Tensor
MODELS = ("diffusion_lm", "cdcd", "ar", "masked")
AUTO_VOCAB = 1000  # vocab_size None: this many pieces, or fewer when the corpus cannot fill them
AUTO_LENGTH = 64  # max_length / cond_length None: the longest training text, at most this


@dataclass(frozen=True)
class TextConfig:
    """The ``[model]`` section: recipe, data columns, tokenizer, network, evaluation.

    ``model`` is ``cdcd`` (with self-conditioning) by default: it won the E2E benchmark
    against the plain Diffusion-LM recipe at the same size and budget (RESULTS.md), and
    reaches 2.3 bits/token on the built-in grammar in 400 steps where Diffusion-LM's
    recipe is at 21. Evaluation samples with 200 ancestral steps (the best sampler there).

    ``vocab_size`` None (not given) takes 1,000 pieces or the most the corpus allows (the
    built-in grammar allows a few hundred); ``max_length`` / ``cond_length`` None fit the
    longest training text / condition (BOS and EOS included) up to 64 tokens, and loading
    the data fills them in; ``cond_column`` None means unconditional (``cond_length`` then
    stays None); ``tokenizer`` None trains one, ``teacher`` None skips lm-score
    (the built-in grammar's columns are ``ref`` and ``mr``: ``--cond-column mr`` makes it
    conditional). ``dropout`` is 0 for the endless built-in grammar; small real corpora
    (E2E's devset) want about 0.1.
    """

    model: str = "cdcd"
    text_column: str = "text"
    cond_column: str | None = None
    vocab_size: int | None = None
    tokenizer: str | None = None
    tokenizer_type: str = "bpe"
    max_length: int | None = None
    cond_length: int | None = None
    embed_dim: int = 16
    width: int = 128
    depth: int = 4
    heads: int = 4
    dropout: float = 0.0
    cond_dropout: float = 0.1
    self_conditioning: bool = True
    time_warp: bool = False
    n_train: int = 5000
    val_fraction: float = 0.1
    data_seed: int = 0
    eval_samples: int = 64
    eval_sampler: str = "ddpm"
    eval_steps: int = 200
    eval_guidance: float = 1.0
    nll_texts: int = 64
    nll_steps: int = 50
    infill_texts: int = 32
    teacher: str | None = None
    mask_schedule: str = "loglinear"  # --model masked: diffkit.discrete.get_schedule name
    mask_lengths: str = "auto"  # --model masked: prior, pads, or auto (masked.mask_lengths)
    mask_length_key: str = "tokens"  # --model masked: what c counts in p(k | c) (length.py)

    def __post_init__(self):
        check_choice("model.model", self.model, MODELS)
        check_choice("model.tokenizer_type", self.tokenizer_type, MODEL_TYPES)
        check_choice("model.mask_lengths", self.mask_lengths, ("auto", "prior", "pads"))
        check_choice("model.mask_length_key", self.mask_length_key, LENGTH_KEYS)
        for name in ("max_length", "cond_length"):
            if getattr(self, name) is not None and not 3 <= getattr(self, name) <= 4096:
                raise ConfigError(
                    f"model.{name} must lie in 3..4096 (or be left out: fit to the data), "
                    f"got {getattr(self, name)}."
                )
        for name in ("embed_dim", "width", "depth", "heads", "n_train", "eval_samples"):
            if not 1 <= getattr(self, name) <= 1_000_000:
                raise ConfigError(
                    f"model.{name} must lie in 1..1000000, got {getattr(self, name)}."
                )
        for name in ("nll_texts", "nll_steps", "infill_texts", "eval_steps"):
            if not 0 <= getattr(self, name) <= 100_000:
                raise ConfigError(f"model.{name} must lie in 0..100000, got {getattr(self, name)}.")
        if self.width % self.heads:
            raise ConfigError(
                f"model.width {self.width} must be a multiple of model.heads {self.heads}."
            )
        if not (0 <= self.dropout < 1 and 0 <= self.cond_dropout < 1):
            raise ConfigError("model.dropout and model.cond_dropout must lie in [0, 1).")
        if self.vocab_size is not None and not 4 <= self.vocab_size <= 1_000_000:
            raise ConfigError(
                f"model.vocab_size must lie in 4..1000000 (or be left out: about 1,000), "
                f"got {self.vocab_size}."
            )
        for name in ("cond_column", "tokenizer", "teacher"):
            if getattr(self, name) == "":
                raise ConfigError(f"model.{name} must not be empty; leave it out instead.")
        if self.nll_steps == 1:
            raise ConfigError("model.nll_steps must be 0 (off) or at least 2.")

    @property
    def conditional(self) -> bool:
        return self.cond_column is not None


# --- network and loss -------------------------------------------------------------------


def build_network(config: TextConfig, diffusion=None) -> torch.nn.Module:
    """The denoiser (or the AR baseline) the config describes; vocab_size must be known."""
    if config.vocab_size is None or config.max_length is None:
        raise ConfigError(
            "model.vocab_size and max_length are unknown; load the data first (it sets them)."
        )
    if config.model == "masked":
        from .masked import build_masked

        return build_masked(config)
    if config.model == "ar":
        from .baseline import ARConfig, ARModel

        ar = ARConfig(
            vocab_size=config.vocab_size,
            width=config.width,
            depth=config.depth,
            heads=config.heads,
            max_length=config.max_length,
            cond_length=config.cond_length if config.conditional else 0,
            dropout=config.dropout,
        )
        return ARModel(ar)
    cond_vocab = config.vocab_size if config.conditional else None
    net = TextDenoiser(
        config.vocab_size,
        embed_dim=config.embed_dim,
        width=config.width,
        depth=config.depth,
        heads=config.heads,
        dropout=config.dropout,
        max_length=config.max_length,
        mode=config.model,
        cond_vocab_size=cond_vocab,
        cond_length=config.cond_length,
        self_conditioning=config.self_conditioning,
        cond_dropout=config.cond_dropout,
    )
    if config.time_warp:
        if config.model != "cdcd":
            raise ConfigError("model.time_warp is part of the cdcd recipe; set --model cdcd.")
        net.time_warp = TimeWarp()
    return net


def loss(net, batch, schedule, *, prediction, weighting, generator=None):
    """Diffusion-LM's or CDCD's loss terms for the denoiser, the cross-entropy for the AR
    model; per example, ``{"loss": (B,), ...}`` (the engine logs each term)."""
    if getattr(net, "masked", False):
        from .masked import masked_loss

        return masked_loss(net, batch, generator=generator)
    if isinstance(net, TextDenoiser):
        return text_loss(
            net, batch, schedule, prediction=prediction, weighting=weighting, generator=generator
        )
    from .baseline import ar_loss

    return ar_loss(
        net, batch, schedule, prediction=prediction, weighting=weighting, generator=generator
    )


# --- data -------------------------------------------------------------------------------


class TextSet(text_data.TextDataset):
    """A :class:`TextDataset` that keeps its corpus (evaluation re-encodes raw texts)."""

    def __init__(self, corpus, tokenizer, config: TextConfig):
        enc = text_data.encode_corpus(tokenizer, corpus.texts, config.max_length)
        conds = None
        if config.conditional:
            conds = text_data.encode_corpus(tokenizer, corpus.conds, config.cond_length)
        super().__init__(enc, conds)
        self.corpus = corpus


def read_corpus(config: TextConfig, path: Path | None):
    """``(train, val)`` corpora: the built-in grammar, or ``path`` split by condition."""
    if path is None:
        from .grammar import restaurants

        corpus = restaurants(config.n_train, config.data_seed)
        if not config.conditional:
            corpus = text_data.Corpus(corpus.texts)
    else:
        corpus = text_data.read(Path(path), config.text_column, config.cond_column)
    return text_data.split(corpus, config.val_fraction, config.data_seed)


def make_tokenizer(config: TextConfig, train) -> Tokenizer:
    """The tokenizer file the config names, or one trained on the training texts."""
    if config.tokenizer is not None:
        return Tokenizer.from_file(config.tokenizer)
    texts = [*train.texts, *(train.conds or ())]
    if config.vocab_size is not None:
        return train_tokenizer(texts, config.vocab_size, config.tokenizer_type)
    try:
        return train_tokenizer(texts, AUTO_VOCAB, config.tokenizer_type)
    except ConfigError:  # a small corpus: the largest vocabulary it allows
        return train_tokenizer(texts, None, config.tokenizer_type)


def auto_length(tokenizer, texts, given: int | None) -> int:
    """``given``, or for None the longest encoded text (BOS, EOS included) capped at AUTO_LENGTH."""
    if given is not None:
        return given
    longest = max((len(tokenizer.encode(t)) + 2 for t in texts), default=3)
    return max(3, min(longest, AUTO_LENGTH))


def load_data(config: TextConfig, path: Path | None) -> DomainData:
    """Texts (and conditions) as token-id datasets; the tokenizer goes into the settings."""
    train, val = read_corpus(config, path)
    tokenizer = make_tokenizer(config, train)
    if config.vocab_size is not None and tokenizer.vocab_size != config.vocab_size:
        raise ConfigError(
            f"the tokenizer {config.tokenizer!r} has {tokenizer.vocab_size} pieces but "
            f"model.vocab_size is {config.vocab_size}; leave vocab_size out or set it to its size."
        )
    config = dataclasses.replace(
        config,
        vocab_size=tokenizer.vocab_size,
        max_length=auto_length(tokenizer, train.texts, config.max_length),
        cond_length=(
            auto_length(tokenizer, train.conds, config.cond_length) if config.conditional else None
        ),
    )
    train_set, val_set = TextSet(train, tokenizer, config), TextSet(val, tokenizer, config)
    for what, encoded, knob in (
        ("training texts", train_set.texts, "max_length"),
        ("conditions", train_set.conds, "cond_length"),
    ):
        note = encoded.report(what, knob) if encoded is not None else ""
        if note:
            print(f"note: {note}", flush=True)
    allowed = tokenizer.rounding_mask(train_set.texts)
    settings = {
        "tokenizer": tokenizer.to_text(),
        "allowed": allowed.nonzero().flatten().tolist(),
        "source": "grammar" if path is None else str(path),
        "conditional": config.conditional,
    }
    return DomainData(train_set, val_set, settings, config)


# --- sampling ---------------------------------------------------------------------------


def generate(
    net,
    schedule,
    n: int,
    *,
    config: TextConfig,
    settings: dict,
    sampler: str,
    steps: int | None,
    prediction: str,
    generator=None,
    options: TextSampleOptions | None = None,
) -> Tensor:
    """``n`` texts as a (n, bytes) uint8 tensor of UTF-8 (see :func:`save_samples`)."""
    texts = generate_texts(
        net,
        schedule,
        n,
        config=config,
        settings=settings,
        sampler=sampler,
        steps=steps,
        prediction=prediction,
        generator=generator,
        options=options or TextSampleOptions(),
    )
    return texts_to_tensor(texts)


def prepare(net, data: DomainData, config: TextConfig) -> DomainData:
    """Before training: a masked LM's ``p(k | c)`` learns what its key ``c`` counts
    (``mask_length_key``) from the tokenizer's pieces, and how many texts one pass over the
    training set counts (:func:`.length.passes`); other networks are left as they are."""
    if hasattr(net, "cond_key_weights"):
        tok = tokenizer_of(data.settings)
        pieces = [tok.piece(i) for i in range(tok.vocab_size)]
        net.cond_key_weights.copy_(key_weights(pieces, config.mask_length_key))
        net.length_texts.fill_(len(data.train))
    return data


def save_samples(samples: Tensor, path: Path) -> None:
    """Write texts one per line (``.txt``) or as ``{"text": ...}`` lines (``.jsonl``)."""
    path = Path(path)
    kind = path.suffix.lower()
    if kind not in (".txt", ".jsonl"):
        raise ConfigError(f"--out must end in .txt or .jsonl for texts, got {str(path)!r}.")
    texts = tensor_to_texts(samples)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == ".txt":
        flat = [" ".join(t.splitlines()) for t in texts]  # one text per line, always
        path.write_text("".join(t + "\n" for t in flat), encoding="utf-8")
    else:
        lines = [json.dumps({"text": t}, ensure_ascii=False) for t in texts]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


domain = Domain(
    name="text",
    config=TextConfig,
    build_network=build_network,
    load_data=load_data,
    generate=generate,
    evaluate=evaluate,
    save_samples=save_samples,
    description="Diffusion LMs on sentencepiece tokens: CDCD (default), Diffusion-LM; AR baseline.",
    loss=loss,
    prepare=prepare,
    options={"sample": TextSampleOptions, "evaluate": TextEvaluateOptions},
    bench=bench_cases,
    defaults={
        "diffusion": {"schedule": "sqrt", "T": 2000, "prediction": "x0"},
        "train": {"batch_size": 64, "lr": 2e-3, "warmup_steps": 100},
    },
)
