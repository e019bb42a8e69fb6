"""Sampling text from the denoiser through the core's ``diffkit.sample``.

Every registered sampler works (``ddpm``, ``ddim``, ``dpmpp_2m``, ...): the network is an x0
model over embeddings (B, L, E) and everything text-specific is a wrapper the core already
takes:

- **clamping** (Li et al. 2022, sec. 4.2): each x0 estimate is snapped to the nearest
  allowed embedding, as ``x0_transform``;
- **classifier-free guidance** on a condition text: ``guidance_scale`` and the learned null
  condition as ``null_cond`` (0 = unconditional, 1 = conditional);
- **templates** (infilling, a requested ``--length``): known positions are held at their
  token embeddings through the core's ``known=`` / ``mask=`` (``with_known``); unknown
  positions may not round to BOS, EOS or PAD, so a blank is filled with text and a length
  of ``n`` tokens means exactly ``BOS, n tokens, EOS, PAD...``;
- **self-conditioning** (Chen et al. 2022): a wrapper that hands the network its previous
  x0 estimate, stateful along one sampling run.

The result is rounded to token ids (nearest allowed embedding) and decoded up to EOS.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from diffkit import sample
from diffkit.errors import ConfigError

from .rerank import consensus_of
from .tokenizer import Tokenizer

Tensor = torch.Tensor
BLANK = "___"


@dataclass(frozen=True)
class Template:
    """What is known of the texts to sample, per position of a length-L row.

    ``ids`` (L,) holds the known token ids (anything at unknown positions), ``known`` (L,)
    is True where the token is given, ``allowed`` (L, V) what rounding may pick there.
    Each may carry a leading batch axis (one template per sample: (n, L), (n, L, V)).
    """

    ids: Tensor
    known: Tensor
    allowed: Tensor


def free_template(tokenizer, length: int, allowed: Tensor) -> Template:
    """No constraint but BOS at position 0 (every training row starts with it)."""
    ids = torch.full((length,), tokenizer.pad_id, dtype=torch.long)
    ids[0] = tokenizer.bos_id
    known = torch.zeros(length, dtype=torch.bool)
    known[0] = True
    return Template(ids, known, allowed.expand(length, -1).clone())


def text_only(tokenizer, allowed: Tensor) -> Tensor:
    """``allowed`` without the special pieces: what a blank may be filled with."""
    out = allowed.clone()
    out[[tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id]] = False
    return out


def _frame(tokenizer, body: list[int | bool | None], length: int, allowed: Tensor, what: str):
    """``BOS body EOS PAD...``: ints in ``body`` are known ids, ``None`` unknown text and
    ``True`` unknown text that starts a word (a blank after a space)."""
    if len(body) + 2 > length:
        raise ConfigError(
            f"{what} needs {len(body) + 2} positions (BOS and EOS included) but the model "
            f"makes texts of at most {length}; ask for less."
        )
    ids = torch.full((length,), tokenizer.pad_id, dtype=torch.long)
    known = torch.ones(length, dtype=torch.bool)
    per_position = allowed.expand(length, -1).clone()  # (L, V)
    text = text_only(tokenizer, allowed)
    word_start = text & torch.tensor(
        [tokenizer.piece(i).startswith("▁") for i in range(len(text))], dtype=torch.bool
    )
    ids[0] = tokenizer.bos_id
    for i, token in enumerate(body, start=1):
        if token is None or token is True:
            known[i] = False
            per_position[i] = word_start if token is True else text
        else:
            ids[i] = token
    ids[len(body) + 1] = tokenizer.eos_id
    return Template(ids, known, per_position)


def length_template(tokenizer, n_tokens: int, length: int, allowed: Tensor) -> Template:
    """Texts of exactly ``n_tokens`` tokens: ``BOS ? x n EOS PAD...`` (``--length``)."""
    if n_tokens < 1:
        raise ConfigError(f"--length must be at least 1 token, got {n_tokens}.")
    return _frame(tokenizer, [None] * n_tokens, length, allowed, f"--length {n_tokens}")


def encode_fragment(tokenizer, text: str, *, first: bool) -> list[int]:
    """Ids of a template fragment as it reads inside a sentence.

    SentencePiece marks a word start with ``▁`` and adds one to every encode call (its
    dummy prefix): a fragment that starts a word (the first, or one after a space) keeps it;
    one glued to the preceding blank (``"___."``) drops it. Surrounding spaces are the
    blanks' business: a blank after a space starts a word with its own ``▁`` piece.
    """
    glued = not first and not text[:1].isspace()
    ids = tokenizer.encode(text.strip())
    if glued and ids and tokenizer.piece(ids[0]).startswith("▁"):
        rest = tokenizer.piece(ids[0])[1:]
        if not rest:
            return ids[1:]
        pieces = {tokenizer.piece(i): i for i in range(tokenizer.vocab_size)}
        if rest in pieces:  # "▁." -> "." when the vocabulary has it
            return [pieces[rest], *ids[1:]]
    return ids


def infill_template(tokenizer, template: str, length: int, allowed: Tensor, span: int = 3):
    """Known text with ``___`` blanks of ``span`` tokens each (``--infill``)."""
    if BLANK not in template:
        raise ConfigError(
            f"--infill needs at least one blank {BLANK!r} in the template, got {template!r}."
        )
    if span < 1:
        raise ConfigError(f"--infill-span must be at least 1 token, got {span}.")
    parts = template.split(BLANK)
    body: list[int | bool | None] = []
    for i, part in enumerate(parts):
        if part.strip():
            body += encode_fragment(tokenizer, part, first=i == 0)
        if i < len(parts) - 1:  # a blank after a space (or at the start) starts a word
            spaced = (i == 0 and not part) or part[-1:].isspace()
            body += [True if spaced else None] + [None] * (span - 1)
    return _frame(tokenizer, body, length, allowed, f"--infill {template!r}")


def condition_ids(tokenizer, cond: str, cond_length: int) -> tuple[Tensor, Tensor]:
    """A condition text as ``(cond_ids, cond_pad)`` of shape (1, Lc), framed like the data."""
    ids = tokenizer.encode(cond, bos=True, eos=True)
    if len(ids) > cond_length:
        raise ConfigError(
            f"--cond has {len(ids)} tokens but the model takes conditions of at most "
            f"{cond_length}; shorten it."
        )
    return torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.bool)


def nearest_ids(net, x: Tensor, allowed: Tensor) -> Tensor:
    """The nearest allowed embedding's id per position: x (B, L, E), allowed (L, V) -> (B, L)."""
    logits = net.logits(x)  # (B, L, V), = -|x - E_w|^2 + const
    return logits.masked_fill(~allowed.to(logits.device), float("-inf")).argmax(-1)


def clamp_to_embeddings(net, allowed: Tensor):
    """Diffusion-LM's clamping trick as an ``x0_transform``: x0 -> nearest allowed embedding."""

    def transform(x0: Tensor) -> Tensor:
        return net.embed(nearest_ids(net, x0, allowed)).to(x0.dtype)

    return transform


def self_conditioned(net):
    """``net`` fed its own previous x0 estimate (zeros at the first call), for one run."""
    previous: dict[str, Tensor] = {}

    def model(x: Tensor, t: Tensor, **cond) -> Tensor:
        prev = previous.get("x0")
        out = net(
            x, t, self_cond=prev if prev is not None and prev.shape == x.shape else None, **cond
        )
        previous["x0"] = out.detach()
        return out

    return model


@torch.no_grad()
def sample_ids(
    net,
    schedule,
    n: int,
    template: Template,
    *,
    sampler: str = "ddim",
    steps: int | None = 50,
    prediction: str = "x0",
    cond: dict | None = None,
    guidance: float | None = None,
    clamp: bool = True,
    temperature: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``n`` rows of token ids (n, L) drawn under ``template``.

    Parameters
    ----------
    cond
        ``{"cond_ids": (1 or n, Lc), "cond_pad": ...}`` for a conditional network, or None
        (unconditional: the null condition).
    guidance
        Classifier-free guidance scale (needs ``cond``); None samples the conditional model.
    clamp
        Snap each x0 estimate to the nearest allowed embedding (Li et al. 2022).
    temperature
        The masked model's draws tempered (0: argmax; None: 1); the Gaussian models have none.
    """
    if getattr(net, "masked", False):  # the masked diffusion LM: its own sampler family
        from .masked import sample_masked

        kind = {"sampler": sampler, "steps": steps, "cond": cond, "guidance": guidance}
        temp = 1.0 if temperature is None else temperature
        return sample_masked(net, n, template, generator=generator, temperature=temp, **kind)
    if temperature is not None:
        raise ConfigError(
            "--temperature tempers the AR and masked models' draws; a Gaussian diffusion LM "
            "has no token draws to temper: drop --temperature."
        )
    device = next(net.parameters()).device
    length, e = template.ids.shape[-1], net.embed_dim
    allowed = template.allowed.to(device)  # (L, V) or (n, L, V)
    known_ids = template.ids.to(device).expand(n, length)  # (n, L)
    known = template.known.to(device).expand(n, length)  # (n, L)
    extra: dict = {}
    if cond is not None:
        cond = {k: v.to(device).expand(n, -1) for k, v in cond.items()}
        if guidance is not None:
            extra = {"guidance_scale": float(guidance), "null_cond": {"cond_ids": net.null_cond_id}}
    if known.any():
        mask = known[:, :, None].expand(n, length, e).float()  # (n, L, E)
        extra.update(known=net.embed(known_ids), mask=mask)
    model = self_conditioned(net) if net.self_conditioning else net
    x = sample(
        model,
        (n, length, e),
        schedule,
        sampler=sampler,
        steps=steps,
        prediction=prediction,
        cond=cond,
        generator=generator,
        device=device,
        x0_transform=clamp_to_embeddings(net, allowed) if clamp else None,
        **extra,
    )
    return torch.where(known, known_ids, nearest_ids(net, x, allowed))


# --- texts from a trained model ------------------------------------------------------------


def tokenizer_of(settings: dict) -> Tokenizer:
    return Tokenizer.from_text(settings["tokenizer"])


def allowed_of(settings: dict, vocab_size: int) -> Tensor:
    """The rounding mask (V,) saved in the settings: the pieces training texts used."""
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    mask[settings["allowed"]] = True
    return mask


def default_clamp(config) -> bool:
    """Clamping by default for the Diffusion-LM recipe only: it lowers the grammar acceptance
    of CDCD samples with deterministic samplers (6% -> 2% with DDIM 50 in one measurement)."""
    return config.model == "diffusion_lm"


def generate_texts(
    net, schedule, n, *, config, settings, sampler, steps, prediction, generator=None, options
) -> list[str]:
    """``n`` texts under the sample options (condition, guidance, template, length; with
    ``drafts`` > 1, the consensus of that many drafts each, drawn in one batch)."""
    if options.slot_rerank and (options.drafts < 2 or options.cond is None):
        raise ConfigError(
            "--slot-rerank chooses among the drafts of a condition: give --drafts 2 or more "
            "and --cond."
        )
    if options.drafts > 1:
        texts = generate_texts(
            net, schedule, n * options.drafts, config=config, settings=settings,
            sampler=sampler, steps=steps, prediction=prediction, generator=generator,
            options=dataclasses.replace(options, drafts=1, slot_rerank=False),
        )  # fmt: skip
        conds = [options.cond] * n if options.slot_rerank else None
        return consensus_of(texts, options.drafts, conds)
    tok = tokenizer_of(settings)
    if options.infill is not None and options.length is not None:
        raise ConfigError("--infill fixes the length already; pass --infill or --length, not both.")
    if options.guidance is not None and options.cond is None:
        raise ConfigError("--guidance needs --cond, the condition text to guide towards.")
    if options.cond is not None and not config.conditional:
        raise ConfigError(
            "--cond needs a conditional model; this one was trained without --cond-column."
        )
    cond = None
    if options.cond is not None:
        cond_ids, cond_pad = condition_ids(tok, options.cond, config.cond_length)
        cond = {"cond_ids": cond_ids, "cond_pad": cond_pad}
    if config.model == "ar":
        return generate_ar(net, n, config, tok, cond, options, generator)
    allowed = allowed_of(settings, config.vocab_size)
    if options.infill is not None:
        tpl = infill_template(tok, options.infill, config.max_length, allowed, options.infill_span)
    elif options.length is not None:
        tpl = length_template(tok, options.length, config.max_length, allowed)
    else:
        tpl = free_template(tok, config.max_length, allowed)
    ids = sample_ids(
        net,
        schedule,
        n,
        tpl,
        sampler=sampler,
        steps=steps,
        prediction=prediction,
        cond=cond,
        guidance=options.guidance,
        clamp=default_clamp(config) if options.clamp is None else options.clamp,
        temperature=options.temperature,
        generator=generator,
    )
    return tok.decode_batch(ids.cpu())


def generate_ar(net, n, config, tok, cond, options, generator) -> list[str]:
    """Samples of the AR baseline (ancestral at ``--temperature``, default 1); templates are
    diffusion-only."""
    if options.infill is not None or options.length is not None or options.guidance is not None:
        raise ConfigError(
            "--infill, --length and --guidance need a diffusion model, not --model ar."
        )
    extra = {}
    if cond is not None:
        device = next(net.parameters()).device
        extra = {k: v.to(device).expand(n, -1) for k, v in cond.items()}
    if options.temperature is not None:
        extra["temperature"] = options.temperature
    ids = net.generate(n, max_length=config.max_length, generator=generator, **extra)
    return tok.decode_batch(ids.cpu())


def texts_to_tensor(texts: list[str]) -> Tensor:
    """Texts as a (N, max bytes) uint8 tensor of UTF-8, zero-padded (a domain sample tensor)."""
    data = [t.encode("utf-8") for t in texts]
    out = torch.zeros(len(data), max([len(d) for d in data] + [1]), dtype=torch.uint8)
    for i, d in enumerate(data):
        out[i, : len(d)] = torch.frombuffer(bytearray(d), dtype=torch.uint8) if d else out[i, :0]
    return out


def tensor_to_texts(x: Tensor) -> list[str]:
    """The inverse of :func:`texts_to_tensor`."""
    rows = x.to(torch.uint8).cpu().tolist()
    return [bytes(b for b in row if b).decode("utf-8") for row in rows]
