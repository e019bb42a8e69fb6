"""The autoregressive baseline: a causal transformer LM on the same blocks as the diffusion LM.

GPT-style (Radford et al. 2019; layout after nanoGPT): token and learned position
embeddings, ``depth`` pre-LN :class:`~.blocks.Block` s with causal attention, a final
LayerNorm and an output layer tied to the token embedding. A condition (E2E's MR) is a
prefix: the sequence is ``cond_ids`` (``BOS mr EOS PAD..``, padded keys masked) followed by
the text ``BOS tokens EOS PAD..``, so the condition's EOS and the text's BOS separate them.
Its NLL is exact (a product of next-token probabilities), which makes it the reference the
diffusion model's likelihood bound is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from diffkit.errors import ConfigError, ShapeError

from .blocks import Block, attention_mask


@dataclass(frozen=True)
class ARConfig:
    """Causal LM settings; width / depth / heads match a diffusion LM's parameter count."""

    vocab_size: int
    width: int = 256
    depth: int = 4
    heads: int = 4
    max_length: int = 64  # text positions, BOS and EOS included
    cond_length: int = 0  # condition prefix positions (0: unconditional)
    dropout: float = 0.1
    mlp_ratio: int = 4
    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3

    def __post_init__(self):
        if min(self.vocab_size, self.width, self.depth, self.heads, self.max_length) < 1:
            raise ConfigError("vocab_size, width, depth, heads and max_length must be positive.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout is {self.dropout}; pass a value in [0, 1).")


def real_tokens(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(B, L) bool, True up to and including each row's first EOS (all True without one)."""
    is_eos = (ids == eos_id).long()
    before = torch.cumsum(is_eos, dim=1) - is_eos  # EOS seen strictly before each position
    return before == 0


class ARModel(nn.Module):
    """Causal transformer LM, called as ``net(ids, pad=, cond_ids=, cond_pad=) -> logits``."""

    def __init__(self, config: ARConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.width)
        self.position = nn.Embedding(c.cond_length + c.max_length, c.width)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            Block(c.width, c.heads, dropout=c.dropout, mlp_ratio=c.mlp_ratio)
            for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.width)
        self.head = nn.Linear(c.width, c.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied (Press & Wolf 2017)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self,
        ids: torch.Tensor,
        pad: torch.Tensor | None = None,
        cond_ids: torch.Tensor | None = None,
        cond_pad: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next-token logits (B, L, V): ``logits[:, i]`` predicts ``ids[:, i + 1]``.

        Parameters
        ----------
        ids
            (B, L) text ids starting with BOS, L <= ``max_length``.
        pad
            (B, L) bool, True at real tokens. Causal attention already hides what follows
            a position, so this only matters for padding inside the sequence.
        cond_ids, cond_pad
            (B, Lc) condition prefix and its mask (True at real tokens), Lc <= ``cond_length``.
        """
        length = ids.shape[1]
        c = self.config
        if length > c.max_length:
            raise ShapeError(f"texts of {length} tokens exceed max_length {c.max_length}.")
        if pad is None:
            pad = torch.ones_like(ids, dtype=torch.bool)
        positions = c.cond_length + torch.arange(length, device=ids.device)  # text after the prefix
        if cond_ids is not None:
            Lc = cond_ids.shape[1]
            if Lc > c.cond_length:
                raise ShapeError(
                    f"conditions of {Lc} tokens exceed cond_length {c.cond_length}; "
                    "build the model with a larger cond_length."
                )
            if cond_pad is None:
                cond_pad = torch.ones_like(cond_ids, dtype=torch.bool)
            ids = torch.cat([cond_ids, ids], dim=1)  # (B, Lc + L)
            pad = torch.cat([cond_pad.bool(), pad.bool()], dim=1)
            positions = torch.cat([torch.arange(Lc, device=ids.device), positions])
        x = self.drop(self.embed(ids) + self.position(positions)[None])  # (B, Lc + L, D)
        mask = attention_mask(pad.bool(), True, ids.shape[1])
        for block in self.blocks:
            x = block(x, mask=mask)
        return self.head(self.norm(x[:, -length:]))  # (B, L, V)

    def nll(
        self,
        ids: torch.Tensor,
        pad: torch.Tensor | None = None,
        cond_ids: torch.Tensor | None = None,
        cond_pad: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Exact NLL in nats of each text (B,): ``-sum_i log p(ids[i+1] | ids[:i+1], cond)``.

        Targets are the tokens after BOS up to and including the first EOS; positions
        where ``pad`` is False (and anything after the first EOS) are excluded.
        """
        keep = real_tokens(ids, self.config.eos_id)
        if pad is not None:
            keep = keep & pad.bool()
        logits = self(ids, keep, cond_ids, cond_pad)[:, :-1]  # (B, L-1, V)
        targets = ids[:, 1:]
        token_nll = F.cross_entropy(logits.transpose(1, 2).float(), targets, reduction="none")
        return (token_nll * keep[:, 1:]).sum(dim=1)  # (B,)

    @torch.no_grad()
    def generate(
        self,
        n: int | None = None,
        *,
        prefix_ids: torch.Tensor | None = None,
        cond_ids: torch.Tensor | None = None,
        cond_pad: torch.Tensor | None = None,
        max_length: int | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample texts token by token until EOS: ids (B, max_length), ``BOS .. EOS PAD..``.

        Parameters
        ----------
        n
            Number of texts; taken from ``cond_ids`` or ``prefix_ids`` when they are batched.
        prefix_ids
            (P,) or (B, P) start of every text (BOS is prepended when missing); kept as is.
        cond_ids, cond_pad
            (B, Lc) condition prefixes, for a conditional model.
        max_length
            Length of the output, at most (and by default) the model's ``max_length``.
        temperature, top_p
            Softmax temperature and nucleus mass (Holtzman et al. 2020); 1.0 = plain sampling,
            temperature 0 = greedy (the argmax at every step).
        generator
            Random state, on the model's device.
        """
        c = self.config
        device = next(self.parameters()).device
        length = max_length or c.max_length
        if length > c.max_length:
            raise ConfigError(f"max_length {length} exceeds the model's {c.max_length}.")
        if temperature < 0 or not 0 < top_p <= 1:
            raise ConfigError("pass temperature >= 0 (0 is greedy) and top_p in (0, 1].")
        if prefix_ids is None:
            prefix_ids = torch.tensor([c.bos_id])
        prefix_ids = torch.as_tensor(prefix_ids, device=device).long()
        if prefix_ids.dim() == 1:
            prefix_ids = prefix_ids[None]
        if prefix_ids[0, 0] != c.bos_id:
            bos = torch.full_like(prefix_ids[:, :1], c.bos_id)
            prefix_ids = torch.cat([bos, prefix_ids], dim=1)
        batch = n or (len(cond_ids) if cond_ids is not None else len(prefix_ids))
        ids = torch.full((batch, length), c.pad_id, dtype=torch.long, device=device)
        start = prefix_ids.shape[1]
        if start > length:
            raise ShapeError(f"the prefix has {start} tokens, more than max_length {length}.")
        ids[:, :start] = prefix_ids.expand(batch, -1)
        done = (ids[:, :start] == c.eos_id).any(dim=1)
        was_training = self.training
        self.eval()
        for i in range(start, length):
            if done.all():
                break
            logits = self(ids[:, :i], None, cond_ids, cond_pad)[:, -1].float()  # (B, V)
            if temperature == 0:
                token = logits.argmax(dim=-1)
            else:
                token = _sample(logits / temperature, top_p, generator)  # (B,)
            ids[:, i] = torch.where(done, c.pad_id, token)
            done = done | (token == c.eos_id)
        self.train(was_training)
        return ids


def _sample(logits: torch.Tensor, top_p: float, generator) -> torch.Tensor:
    """One token per row of ``logits`` (B, V), from the smallest set of mass >= ``top_p``."""
    probs = logits.softmax(dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(dim=-1) - sorted_probs >= top_p  # mass before >= top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def ar_loss(
    net: ARModel, batch: dict, schedule=None, *, prediction=None, weighting=None, generator=None
) -> torch.Tensor:
    """Mean NLL per predicted token of each text (B,), in the ``Domain.loss`` signature.

    The diffusion arguments are accepted and ignored, so one engine trains both models.
    """
    ids, pad = batch["ids"], batch.get("pad")
    nll = net.nll(ids, pad, batch.get("cond_ids"), batch.get("cond_pad"))
    keep = real_tokens(ids, net.config.eos_id)
    if pad is not None:
        keep = keep & pad.bool()
    return nll / keep[:, 1:].sum(dim=1).clamp(min=1)
