"""The masked diffusion LM (``--model masked``): absorbing-state diffusion over token ids.

MDLM (Sahoo et al. 2024) on the text domain's transformer block, through
:mod:`diffkit.discrete`: each token of ``BOS text EOS PAD..`` is masked with probability
``1 - alpha_t`` (BOS never: every row starts with it), and a bidirectional transformer
predicts the clean tokens at the masked positions. How a text's length is modelled is the
``lengths`` choice (``model.mask_lengths``):

- ``"prior"`` (the default): a length prior over the token count, ``p(k)`` the training
  texts' add-one smoothed histogram, or ``p(k | c)`` for a conditional model, smoothed counts
  per condition size (its tokens, words or MR slots: ``model.mask_length_key``,
  :mod:`.length`), and the network models the k tokens given it: BOS,
  the EOS and the PADs are given, never masked, never paid for; the sampler draws k first.
  On the built-in grammar this closed most of the gap to the AR model at equal steps
  (benchmarks/results/text-masked-gap.md).
- ``"pads"``: PAD and EOS are ordinary tokens, so the model learns where a text ends under
  masking, and the bound pays for every position after BOS (conditional checkpoints saved
  before ``p(k | c)`` existed load as this).

- **network** :class:`MaskedLM`: token and position embeddings over ``V + 1`` ids (the text
  pieces and the mask, ``mask_id = V``), ``depth`` :class:`~.blocks.Block` s without a causal
  mask, a final LayerNorm and an output layer tied to the embedding: the AR baseline's layout,
  so the two compare at one parameter count. It ignores t: the absorbing process's optimal
  denoiser does not depend on it (Ou et al. 2024, "Your absorbing discrete diffusion secretly
  models the conditional distributions of clean data"), and MDLM's cached sampler is exact
  only for such a network. A condition text (E2E's MR) is a prefix of the same attention
  stack, with a learned null condition for classifier-free guidance, as in :mod:`.network`.
- **loss** :func:`masked_loss`: MDLM's continuous-time bound at stratified times, per token,
  its ``1 / t`` weight replaced by its expectation given the mask (less variance, same
  bound), with the condition dropped to the null one at rate ``cond_dropout``
  (:func:`.loss.condition`).
- **likelihood** :func:`masked_nll`: the bound integrated over t (Gauss-Legendre), in nats per
  text; :mod:`.evaluate` divides by the tokens the AR model predicts (after BOS, EOS included)
  so the two compare. With the length prior it adds ``-log p(k)``; with ``"pads"`` the PAD
  positions are part of the masked model's sequence and it pays for them.
- **sampling** :func:`sample_masked`: ``ancestral``, ``cached`` or ``maskgit`` from
  :data:`diffkit.discrete.SAMPLERS`, under the same templates as the continuous models
  (:class:`.generate.Template`): known tokens (BOS, an ``--infill`` template's text, the EOS
  and PADs of ``--length``) are never masked, and each position draws only what the template
  allows there. Decoding stops at the first EOS.
"""

from __future__ import annotations

import torch
from torch import nn

from diffkit import discrete
from diffkit.errors import ConfigError, ShapeError, check_choice

from . import length as length_prior
from .blocks import Block, attention_mask
from .length import drawn_lengths, length_nats
from .loss import condition

Tensor = torch.Tensor
# The commands' Gaussian defaults (``diffkit sample``: ddim, ``eval_sampler``: ddpm) stand for
# the masked model's default: the cached sampler, equal in law to ancestral for a t-free net.
DEFAULT_SAMPLER = "cached"
GAUSSIAN_DEFAULTS = ("ddim", "ddpm")
LENGTHS = ("prior", "pads")


class MaskedLM(nn.Module):
    """Bidirectional transformer over token ids, ``net(x_t, t, **cond) -> logits (B, L, V + 1)``.

    Parameters
    ----------
    vocab_size
        V, the tokenizer's pieces; the mask token is id V.
    width, depth, heads, dropout, max_length
        The transformer (:class:`~diffkit.domains.text.blocks.Block` stack) and its positions.
    cond_length
        Longest condition prefix; None for an unconditional network.
    cond_dropout
        Share of training examples whose condition the loss replaces by the null condition.
    schedule
        Name of the masking schedule (:func:`diffkit.discrete.get_schedule`).
    lengths
        ``"prior"``: a text's token count comes from a length prior and the network models
        the tokens given it (:mod:`.length`); ``"pads"``: the network models the whole row,
        EOS and PADs included, under masking.
    pad_id, eos_id
        The tokenizer's PAD and EOS ids (the length prior's frame).
    """

    masked = True  # the text domain's dispatch tells this model from the others by it

    def __init__(
        self,
        vocab_size: int,
        *,
        width: int = 128,
        depth: int = 4,
        heads: int = 4,
        dropout: float = 0.0,
        max_length: int = 64,
        cond_length: int | None = None,
        cond_dropout: float = 0.1,
        schedule: str = "loglinear",
        lengths: str = "prior",
        pad_id: int = 0,
        eos_id: int = 3,
    ):
        super().__init__()
        check_choice("model.mask_schedule", schedule, discrete.schedules.SCHEDULES)
        check_choice("model.mask_lengths", lengths, LENGTHS)
        self.schedule = discrete.get_schedule(schedule)
        self.lengths, self.pad_id, self.eos_id = lengths, pad_id, eos_id
        # the training texts' token counts, counted as batches pass (:mod:`.length`)
        self.register_buffer("length_counts", torch.zeros(max_length, dtype=torch.float64))
        if cond_length is not None and lengths == "prior":  # (c, k) counts for p(k | c)
            shape = (cond_length + 1, max_length)
            self.register_buffer("cond_length_counts", torch.zeros(shape, dtype=torch.float64))
            # what each condition piece adds to c (1: its token count); the domain's
            # prepare sets them from the tokenizer and model.mask_length_key
            self.register_buffer("cond_key_weights", torch.ones(vocab_size))
            # the training set's size, so that p(k | c) smooths per pass (length.passes)
            self.register_buffer("length_texts", torch.zeros((), dtype=torch.float64))
        self.vocab_size, self.max_length, self.cond_dropout = vocab_size, max_length, cond_dropout
        self.embed = nn.Embedding(vocab_size + 1, width)  # the last row is the mask token
        self.position = nn.Embedding(max_length, width)
        self.blocks = nn.ModuleList(Block(width, heads, dropout=dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size + 1, bias=False)
        self.head.weight = self.embed.weight  # tied, as the AR baseline (Press & Wolf 2017)
        self.drop = nn.Dropout(dropout)
        self.cond_length = cond_length
        if cond_length is not None:  # condition tokens share the table, as the AR prefix does
            self.cond_position = nn.Embedding(cond_length, width)
            self.null = nn.Parameter(torch.zeros(width))  # the learned null condition
        self.apply(_init)

    def _load_from_state_dict(self, state, prefix, *args, **kwargs):
        # a conditional checkpoint from before p(k | c) modelled its PADs: keep it so
        if hasattr(self, "cond_length_counts") and prefix + "cond_length_counts" not in state:
            del self.cond_length_counts, self.cond_key_weights, self.length_texts
            self.lengths = "pads"
        elif hasattr(self, "cond_key_weights"):  # from before c had a choice, or a pass a size
            state.setdefault(prefix + "cond_key_weights", torch.ones_like(self.cond_key_weights))
            state.setdefault(prefix + "length_texts", torch.zeros_like(self.length_texts))
        super()._load_from_state_dict(state, prefix, *args, **kwargs)

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    @property
    def conditional(self) -> bool:
        return self.cond_length is not None

    @property
    def null_cond_id(self) -> int:
        """A condition row made only of this id is the null condition (unconditional)."""
        return self.vocab_size + 1

    def condition(self, cond_ids, cond_pad, b: int, device) -> tuple[Tensor, Tensor]:
        """The condition prefix (B, Lc, D) and its key mask (B, Lc); null rows see one token."""
        if cond_ids is None:
            cond_ids = torch.full((b, 1), self.null_cond_id, dtype=torch.long, device=device)
        cond_ids = cond_ids.long().expand(b, -1)
        if cond_ids.shape[1] > self.cond_length:
            raise ShapeError(
                f"the condition has {cond_ids.shape[1]} tokens but this network takes at most "
                f"{self.cond_length}; shorten it or train with a larger cond_length."
            )
        keep = torch.ones_like(cond_ids, dtype=torch.bool) if cond_pad is None else cond_pad.bool()
        null = (cond_ids == self.null_cond_id).all(dim=1, keepdim=True)  # (B, 1)
        first = torch.arange(cond_ids.shape[1], device=device)[None] == 0  # (1, Lc)
        keep = torch.where(null, first, keep.expand(b, -1))  # the null row leaks no length
        tokens = self.embed(cond_ids.clamp(max=self.vocab_size - 1))  # (B, Lc, D)
        tokens = torch.where(null[:, :, None], self.null.expand_as(tokens), tokens)
        positions = torch.arange(cond_ids.shape[1], device=device)
        return tokens + self.cond_position(positions)[None], keep

    def forward(
        self, x_t: Tensor, t: Tensor | None = None, *, cond_ids=None, cond_pad=None
    ) -> Tensor:
        """Logits over x_0 (B, L, V + 1) from tokens ``x_t`` (B, L); ``t`` is not used."""
        b, length = x_t.shape
        if length > self.max_length:
            raise ShapeError(f"texts of {length} tokens exceed max_length {self.max_length}.")
        positions = torch.arange(length, device=x_t.device)
        h = self.embed(x_t) + self.position(positions)[None]  # (B, L, D)
        keep, prefix = None, 0
        if self.conditional:
            c, c_keep = self.condition(cond_ids, cond_pad, b, x_t.device)
            prefix = c.shape[1]
            h = torch.cat([c, h], dim=1)  # (B, Lc + L, D)
            ones = torch.ones(b, length, dtype=torch.bool, device=x_t.device)
            keep = torch.cat([c_keep, ones], dim=1)  # (B, Lc + L)
        mask = attention_mask(keep, False, h.shape[1], h.device)
        h = self.drop(h)
        for block in self.blocks:
            h = block(h, mask=mask)
        return self.head(self.norm(h[:, prefix:]))  # (B, L, V + 1)


def _init(module: nn.Module) -> None:
    """GPT-2's initialisation, as the AR baseline's."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def build_masked(config) -> MaskedLM:
    """The :class:`MaskedLM` a :class:`~.domain.TextConfig` describes."""
    return MaskedLM(
        config.vocab_size,
        width=config.width,
        depth=config.depth,
        heads=config.heads,
        dropout=config.dropout,
        max_length=config.max_length,
        cond_length=config.cond_length if config.conditional else None,
        cond_dropout=config.cond_dropout,
        schedule=config.mask_schedule,
        lengths=mask_lengths(config),
    )


def mask_lengths(config) -> str:
    """The config's ``mask_lengths``; ``"auto"`` is the length prior, ``p(k | c)`` for
    conditional models (on E2E it beat PADs: benchmarks/results/text-masked-cond.md)."""
    return "prior" if config.mask_lengths == "auto" else config.mask_lengths


def bos_kept(ids: Tensor) -> Tensor:
    """(B, L) bool, True at position 0 only: BOS is given, never masked, never counted."""
    keep = torch.zeros_like(ids, dtype=torch.bool)
    keep[:, 0] = True
    return keep


def given(net, ids: Tensor) -> Tensor:
    """(B, L) bool, the positions the network is given: BOS, and with a length prior the EOS
    and PADs after the text too (:func:`.length.paid_keep`)."""
    if getattr(net, "lengths", "pads") == "prior":
        return length_prior.paid_keep(ids, net.eos_id)
    return bos_kept(ids)


def masked_loss(
    net,
    batch: dict,
    schedule=None,
    *,
    prediction=None,
    weighting=None,
    generator=None,
    per_masked: bool = True,
):
    """MDLM's bound per example in nats per position, in the ``Domain.loss`` signature.

    Returns ``{"loss": (B,), "nats": (B,)}``: ``nats`` is the bound's one-time estimate of
    ``-log p(text)``, ``loss`` the training loss over the L - 1 positions after BOS. With
    ``per_masked`` (the default) it weighs the masked cross-entropy by ``(k + 1) / |masked|``
    instead of the bound's ``1 / t`` (k the paid positions): that is ``E[1 / t | the mask]``
    for uniform t under the linear schedule (eps-close under loglinear), so the loss is the
    same bound in expectation with less variance (Rao-Blackwell); on the built-in grammar it
    lowered the bound by 0.8 bits per text at equal steps (benchmarks/text_masked_gap.py).
    ``per_masked=False`` is MDLM's estimate, ``nats`` over the positions. The Gaussian
    arguments are accepted and ignored; the schedule is the network's masking schedule.
    """
    ids = batch["ids"]
    if net.training and getattr(net, "lengths", "pads") == "prior":
        length_prior.count_batch(net, ids, batch)  # with the true condition, not dropped
    cond = condition(net, batch, generator) or {}
    t = discrete.stratified_t(ids.shape[0], generator, ids.device)
    keep = given(net, ids)
    x_t = discrete.q_sample(ids, t, net.schedule, net.mask_id, generator, keep)
    cross_entropy = discrete.masked_cross_entropy(
        net(x_t, t.float(), **cond), ids, x_t, net.mask_id
    )  # (B,) the masked_diffusion_loss of diffkit.discrete, its pieces kept
    nats = net.schedule.weight(t).to(cross_entropy) * cross_entropy
    loss = nats
    if per_masked:
        hidden = (x_t == net.mask_id).sum(-1).clamp(min=1)  # rows with none cost 0 either way
        loss = cross_entropy * ((~keep).sum(-1) + 1) / hidden
    return {
        "loss": loss / (ids.shape[1] - 1),
        "nats": nats.detach() + length_nats(net, ids, cond).to(nats),
    }


@torch.no_grad()
def masked_nll(
    net, ids: Tensor, *, cond=None, num_t: int = 16, masks_per_t: int = 2, generator=None
) -> Tensor:
    """Upper bound on ``-log p(ids)`` in nats per text (B,), float64.

    MDLM's bound integrated with ``num_t`` Gauss-Legendre times and ``masks_per_t`` mask draws
    each (``num_t * masks_per_t`` network calls per text). BOS is given; with a length prior
    the bound is ``-log p(k)`` plus the tokens' bound given the EOS and PADs, otherwise every
    other position (EOS and the PADs after it included) is paid for under masking.
    """
    device = next(net.parameters()).device
    ids = ids.to(device)
    cond = {k: v.to(device) for k, v in (cond or {}).items()}
    bound = discrete.nll_bound(
        net, ids, net.schedule, mask_id=net.mask_id, num_t=num_t, masks_per_t=masks_per_t,
        keep=given(net, ids), cond=cond, generator=generator,
    )  # fmt: skip
    return bound.nats + length_nats(net, ids, cond)


def masked_sampler(name: str) -> str:
    """A masked-diffusion sampler name; the commands' Gaussian defaults mean the cached one."""
    if name in GAUSSIAN_DEFAULTS:
        return DEFAULT_SAMPLER
    if name not in discrete.SAMPLERS:
        raise ConfigError(
            f"unknown sampler {name!r} for --model masked; choose one of: "
            f"{', '.join(discrete.SAMPLERS)} (ddim and ddpm, the commands' defaults, mean "
            f"{DEFAULT_SAMPLER})."
        )
    return name


@torch.no_grad()
def sample_masked(
    net,
    n: int,
    template,
    *,
    sampler: str = DEFAULT_SAMPLER,
    steps: int | None = None,
    cond: dict | None = None,
    guidance: float | None = None,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``n`` rows of token ids (n, L) drawn under ``template`` (a :class:`.generate.Template`).

    Parameters
    ----------
    sampler, steps
        A name in :data:`diffkit.discrete.SAMPLERS` (see :func:`masked_sampler`) and its
        steps (default L).
    cond
        ``{"cond_ids": (1 or n, Lc), "cond_pad": ...}`` for a conditional network, or None
        (the null condition).
    guidance
        Classifier-free guidance scale on logits (needs ``cond``): 0 unconditional, 1 the
        conditional model; None samples the conditional model without the second pass.
    """
    name = masked_sampler(sampler)
    device = next(net.parameters()).device
    if cond is not None:
        cond = {k: v.to(device).expand(n, -1) for k, v in cond.items()}
    template = drawn_lengths(net, n, template, generator, cond, guidance, temperature)
    length = template.ids.shape[-1]
    known_ids = template.ids.to(device).expand(n, length)  # (n, L)
    known = template.known.to(device).expand(n, length)  # (n, L)
    allowed = template.allowed.to(device)  # (L, V) or (n, L, V): what each position may draw
    allowed = torch.cat([allowed, torch.zeros_like(allowed[..., :1])], dim=-1)  # mask: never
    model = net
    if guidance is not None:
        if cond is None:
            raise ConfigError("guidance needs a condition (--cond) to guide towards.")
        model = discrete.cfg(net, float(guidance), {"cond_ids": net.null_cond_id})

    def constrained(x: Tensor, t: Tensor, **c) -> Tensor:  # after guidance: no -inf mixing
        return model(x, t, **c).float().masked_fill(~allowed, -torch.inf)

    return discrete.sample(
        constrained, (n, length), net.schedule, mask_id=net.mask_id, sampler=name, steps=steps,
        cond=cond, known=known_ids, known_mask=known, generator=generator,
        temperature=temperature, device=device,
    )  # fmt: skip
