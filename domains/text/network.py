"""The Diffusion-LM denoiser: a transformer over noisy token embeddings ``(B, L, E)``.

Li et al. 2022 ("Diffusion-LM Improves Controllable Text Generation"): a learned embedding
table (E = 16 for E2E) maps token ids to the continuous data the Gaussian process diffuses;
the network predicts x0 from ``x_t``; a rounding head tied to the same table turns vectors
back into tokens. The rounding logits are ``2 x E^T - |E|^2``, which is ``-|x - E_w|^2`` up
to a term constant in ``w``: softmax over them is a nearest-embedding rule, so a clean
embedding rounds to its own token and the clamping trick and rounding agree.

Two output modes:

- ``"diffusion_lm"``: the network regresses x0 directly (Li et al. 2022).
- ``"cdcd"``: the network outputs logits and ``x0 = softmax(logits) E`` (score interpolation,
  Dieleman et al. 2022, "Continuous diffusion for categorical data"); embeddings are then
  L2-normalised to norm ``sqrt(E)`` so cross-entropy training cannot inflate them.

Optional pieces: a condition text as a *prefix* of the same self-attention stack (its own
embedding table with one extra row, the learned null condition, for classifier-free
guidance), a key padding mask for the sampled text, and self-conditioning (Chen et al. 2022,
"Analog Bits"): the previous x0 estimate is an extra input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from diffkit.errors import ConfigError, ShapeError

from .blocks import Block, attention_mask, sinusoidal_embedding

Tensor = torch.Tensor
MODES = ("diffusion_lm", "cdcd")


class TextDenoiser(nn.Module):
    """Transformer denoiser called as ``net(x_t, t, **cond) -> x0`` with x0 of x_t's shape.

    Parameters
    ----------
    vocab_size
        Tokens of the text vocabulary (rows of the embedding table).
    embed_dim
        E, the dimension the diffusion runs in.
    width, depth, heads, dropout
        The transformer (:class:`~diffkit.domains.text.blocks.Block` stack).
    max_length
        L, the longest sequence (positional embeddings).
    mode
        ``"diffusion_lm"`` (predict x0) or ``"cdcd"`` (predict logits, x0 by interpolation).
    cond_vocab_size, cond_length
        Vocabulary and longest length of the condition text; None for an unconditional net.
    self_conditioning
        Take the previous x0 estimate as a second input (zeros when absent).
    cond_dropout
        Share of training examples whose condition the loss replaces by the null condition.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        embed_dim: int = 16,
        width: int = 128,
        depth: int = 4,
        heads: int = 4,
        dropout: float = 0.1,
        max_length: int = 64,
        mode: str = "diffusion_lm",
        cond_vocab_size: int | None = None,
        cond_length: int = 64,
        self_conditioning: bool = False,
        cond_dropout: float = 0.1,
    ):
        super().__init__()
        if mode not in MODES:
            raise ConfigError(
                f"unknown text model mode {mode!r}; choose one of: {', '.join(MODES)}."
            )
        self.vocab_size, self.embed_dim, self.max_length = vocab_size, embed_dim, max_length
        self.mode, self.self_conditioning, self.cond_dropout = mode, self_conditioning, cond_dropout
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        nn.init.normal_(self.embedding.weight)  # Diffusion-LM: unit-variance embeddings
        inputs = embed_dim * (2 if self_conditioning else 1)
        self.up = nn.Sequential(nn.Linear(inputs, width), nn.Tanh(), nn.Linear(width, width))
        self.position = nn.Embedding(max_length, width)
        self.time = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(Block(width, heads, dropout=dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.down = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, embed_dim))
        self.drop = nn.Dropout(dropout)
        self.cond_vocab_size = cond_vocab_size
        if cond_vocab_size is not None:
            # the extra last row is the learned null condition of classifier-free guidance
            self.cond_embedding = nn.Embedding(cond_vocab_size + 1, width)
            self.cond_position = nn.Embedding(cond_length, width)
            self.cond_length = cond_length

    @property
    def null_cond_id(self) -> int | None:
        """The condition token id of the null condition (a row of it = unconditional)."""
        return self.cond_vocab_size

    @property
    def conditional(self) -> bool:
        return self.cond_vocab_size is not None

    # --- embeddings and rounding -----------------------------------------------------------

    def table(self) -> Tensor:
        """The embedding table (V, E) the diffusion's data live on."""
        w = self.embedding.weight
        if self.mode == "cdcd":  # CDCD: fixed norm, so cross-entropy cannot grow the SNR
            w = F.normalize(w, dim=-1) * math.sqrt(self.embed_dim)
        return w

    def embed(self, ids: Tensor) -> Tensor:
        """Token ids (B, L) as clean data x0 (B, L, E)."""
        return F.embedding(ids, self.table())

    def logits(self, x: Tensor) -> Tensor:
        """Rounding logits (B, L, V) of vectors x (B, L, E): ``2 x E^T - |E|^2``."""
        w = self.table()
        return 2 * x @ w.T - (w * w).sum(-1)  # = -|x - E_w|^2 + |x|^2

    # --- the denoiser ----------------------------------------------------------------------

    def denoise(
        self,
        x_t: Tensor,
        t: Tensor,
        *,
        cond_ids: Tensor | None = None,
        cond_pad: Tensor | None = None,
        pad: Tensor | None = None,
        self_cond: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(x0, logits)``: the x0 estimate (B, L, E) and its rounding logits (B, L, V)."""
        b, length, e = x_t.shape
        if e != self.embed_dim or length > self.max_length:
            raise ShapeError(
                f"the text denoiser takes (B, L<={self.max_length}, {self.embed_dim}) inputs, "
                f"got {tuple(x_t.shape)}."
            )
        if self.self_conditioning:
            prev = torch.zeros_like(x_t) if self_cond is None else self_cond.to(x_t)
            x_in = torch.cat([x_t, prev], dim=-1)  # (B, L, 2E)
        else:
            x_in = x_t
        positions = torch.arange(length, device=x_t.device)
        t_emb = self.time(sinusoidal_embedding(t.reshape(-1).expand(b), self.up[0].out_features))
        h = self.up(x_in) + self.position(positions)[None] + t_emb[:, None]  # (B, L, D)
        keep = pad.bool() if pad is not None else None
        prefix = 0
        if self.conditional:
            c, c_keep = self.condition(cond_ids, cond_pad, b, x_t.device)
            prefix = c.shape[1]
            h = torch.cat([c + t_emb[:, None], h], dim=1)  # (B, Lc + L, D)
            ones = torch.ones(b, length, dtype=torch.bool, device=x_t.device)
            keep = torch.cat([c_keep, ones if keep is None else keep], dim=1)  # (B, Lc + L)
        mask = attention_mask(keep, False, h.shape[1], h.device)
        h = self.drop(h)
        for block in self.blocks:
            h = block(h, mask=mask)
        out = self.down(self.norm(h[:, prefix:]))  # (B, L, E)
        if self.mode == "cdcd":
            logits = self.logits(out)
            return logits.softmax(-1) @ self.table(), logits  # score interpolation
        return out, self.logits(out)

    def condition(self, cond_ids, cond_pad, b: int, device) -> tuple[Tensor, Tensor]:
        """The condition prefix (B, Lc, D) and its key mask (B, Lc); null rows see one token."""
        if cond_ids is None:  # a conditional net asked unconditionally: the null condition
            cond_ids = torch.full((b, 1), self.null_cond_id, dtype=torch.long, device=device)
        cond_ids = cond_ids.long().expand(b, -1)
        if cond_ids.shape[1] > self.cond_length:
            raise ShapeError(
                f"the condition has {cond_ids.shape[1]} tokens but this network takes at most "
                f"{self.cond_length}; shorten it or train with a larger cond_length."
            )
        keep = torch.ones_like(cond_ids, dtype=torch.bool) if cond_pad is None else cond_pad.bool()
        keep = keep.expand(b, -1)
        null = (cond_ids == self.null_cond_id).all(dim=1, keepdim=True)  # (B, 1)
        first = torch.arange(cond_ids.shape[1], device=device)[None] == 0  # (1, Lc)
        keep = torch.where(null, first, keep)  # the null condition does not leak a length
        positions = torch.arange(cond_ids.shape[1], device=device)
        return self.cond_embedding(cond_ids) + self.cond_position(positions)[None], keep

    def forward(self, x_t: Tensor, t: Tensor, **cond) -> Tensor:
        """x0 (B, L, E) from ``x_t`` (B, L, E) at times ``t`` (B,): the core's ``"x0"``."""
        return self.denoise(x_t, t, **cond)[0]
