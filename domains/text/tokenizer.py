"""SentencePiece tokenizers, trained in process; the only module that imports sentencepiece.

Every tokenizer trained here has the same special ids, which the rest of the text domain
relies on: ``pad 0, unk 1, bos 2, eos 3``, then 256 byte-fallback pieces ``<0x00>..<0xFF>``
(so any UTF-8 text encodes without ``unk``), then the learned pieces. A tokenizer is its
serialised model proto: it travels inside a checkpoint's JSON settings as base64 text
(:meth:`Tokenizer.to_text`), so a run never depends on a path outside it.
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm
import torch

from diffkit.errors import ConfigError, DataError, check_choice
from diffkit.reading import read_bytes

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_TYPES = ("unigram", "bpe")


class Tokenizer:
    """A SentencePiece model: encode texts to ids and decode ids back to text.

    Build one with :func:`train_tokenizer`, :meth:`from_file`, :meth:`from_proto` or
    :meth:`from_text`; it is immutable (its proto fixes everything).
    """

    __slots__ = ("_processor", "_proto")

    def __init__(self, proto: bytes):
        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(proto)
        except RuntimeError:
            raise ConfigError(
                "the tokenizer bytes are not a SentencePiece model; pass a .model file or "
                "the base64 text Tokenizer.to_text() wrote."
            ) from None
        if processor.pad_id() < 0 or processor.eos_id() < 0 or processor.bos_id() < 0:
            raise ConfigError(
                "the SentencePiece model has no pad, bos or eos piece; train it with "
                "pad_id, bos_id and eos_id set (train_tokenizer does)."
            )
        self._proto, self._processor = bytes(proto), processor

    # constructors and serialisation
    @classmethod
    def from_proto(cls, proto: bytes) -> Tokenizer:
        """The tokenizer of a serialised SentencePiece model proto."""
        return cls(proto)

    @classmethod
    def from_file(cls, path) -> Tokenizer:
        """The tokenizer of an existing SentencePiece ``.model`` file."""
        return cls(read_bytes(path, "tokenizer model"))

    @classmethod
    def from_text(cls, text: str) -> Tokenizer:
        """The tokenizer :meth:`to_text` serialised."""
        try:
            proto = base64.b64decode(text.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise ConfigError(
                "the tokenizer text is not base64; pass the string Tokenizer.to_text() wrote."
            ) from None
        return cls(proto)

    @property
    def proto(self) -> bytes:
        """The serialised SentencePiece model."""
        return self._proto

    def to_text(self) -> str:
        """The model as base64 ASCII text, for JSON settings."""
        return base64.b64encode(self._proto).decode("ascii")

    def save(self, path) -> None:
        """Write the model as a SentencePiece ``.model`` file."""
        Path(path).write_bytes(self._proto)

    def __eq__(self, other) -> bool:
        return isinstance(other, Tokenizer) and self._proto == other._proto

    def __hash__(self) -> int:
        return hash(self._proto)

    def __reduce__(self):  # picklable (DataLoader workers), through the proto
        return (Tokenizer.from_proto, (self._proto,))

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size})"

    # ids
    @property
    def vocab_size(self) -> int:
        return self._processor.vocab_size()

    @property
    def pad_id(self) -> int:
        return self._processor.pad_id()

    @property
    def bos_id(self) -> int:
        return self._processor.bos_id()

    @property
    def eos_id(self) -> int:
        return self._processor.eos_id()

    @property
    def unk_id(self) -> int:
        return self._processor.unk_id()

    def piece(self, i: int) -> str:
        """The piece string of id ``i`` (``▁`` marks a word start)."""
        return self._processor.id_to_piece(int(i))

    def is_byte(self, i: int) -> bool:
        """Whether id ``i`` is a byte-fallback piece ``<0x..>``."""
        return self._processor.is_byte(int(i))

    # text <-> ids
    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids of ``text``, optionally framed by BOS / EOS."""
        ids = self._processor.encode(text)
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of ``ids``: everything up to the first EOS, with PAD and BOS dropped."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self._processor.decode([i for i in ids if i not in (self.pad_id, self.bos_id)])

    def decode_batch(self, ids: torch.Tensor) -> list[str]:
        """:meth:`decode` of each row of ``ids`` (B, L)."""
        return [self.decode(row) for row in ids]

    def rounding_mask(self, encoded) -> torch.Tensor:
        """The pieces rounding may produce: (V,) bool, True for ids present in ``encoded``.

        Parameters
        ----------
        encoded
            The encoded training texts: an (N, L) id tensor, an object with an ``ids`` tensor
            (:class:`~diffkit.domains.text.data.Encoded`), or lists of ids.

        Returns
        -------
        torch.Tensor
            True at every id occurring in ``encoded`` and at EOS and PAD; False at BOS, UNK
            and every piece that never occurs (most byte-fallback pieces among them).
        """
        ids = getattr(encoded, "ids", encoded)
        if not isinstance(ids, torch.Tensor):
            ids = torch.tensor([i for row in ids for i in row], dtype=torch.long)
        mask = torch.zeros(self.vocab_size, dtype=torch.bool)
        mask[ids.reshape(-1).long().cpu()] = True
        mask[[self.eos_id, self.pad_id]] = True
        mask[[self.bos_id, self.unk_id]] = False
        return mask


def _too_high(message: str) -> int | None:
    match = re.search(
        r"Vocabulary size too high \(\d+\)\. Please set it to a value <= (\d+)", message
    )
    return int(match.group(1)) if match else None


def _too_low(message: str) -> int | None:
    match = re.search(r"Vocabulary size is smaller than required_chars\. \d+ vs (\d+)", message)
    return int(match.group(1)) if match else None


def _train(texts: Sequence[str], vocab_size: int, model_type: str) -> bytes:
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=writer,
        vocab_size=vocab_size,
        model_type=model_type,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        byte_fallback=True,
        normalization_rule_name="identity",  # decode(encode(text)) == text: no NFKC rewrite
        remove_extra_whitespaces=False,  # ... and no collapsed spaces
        input_sentence_size=1_000_000,
        shuffle_input_sentence=True,
        num_threads=min(4, os.cpu_count() or 1),
        minloglevel=2,  # quiet
    )
    return writer.getvalue()


def train_tokenizer(
    texts: Iterable[str], vocab_size: int | None = 1000, model_type: str = "unigram"
) -> Tokenizer:
    """Train a SentencePiece tokenizer on ``texts`` in memory (no files written).

    Parameters
    ----------
    texts
        The training texts.
    vocab_size
        Pieces in all, the 4 special and 256 byte pieces included. None takes the largest
        vocabulary the corpus allows.
    model_type
        ``"unigram"`` (Kudo 2018) or ``"bpe"`` (Sennrich et al. 2016).

    Raises
    ------
    ConfigError
        When ``vocab_size`` is more than the corpus can fill or less than its characters
        need; the message names the size that works.
    """
    check_choice("tokenizer model type", model_type, MODEL_TYPES)
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise DataError("no non-empty texts to train a tokenizer on; pass at least one text.")
    try:
        return Tokenizer(_train(texts, vocab_size or 1_000_000, model_type))
    except RuntimeError as error:
        high, low = _too_high(str(error)), _too_low(str(error))
        if high is not None and vocab_size is None:
            return Tokenizer(_train(texts, high, model_type))
        if high is not None:
            raise ConfigError(
                f"vocab_size {vocab_size} is too large for this corpus: a {model_type} "
                f"tokenizer of it can have at most {high} pieces; pass vocab_size <= {high}."
            ) from None
        if low is not None:
            raise ConfigError(
                f"vocab_size {vocab_size} is too small for this corpus: its characters, 256 "
                f"byte pieces and 4 special pieces need at least {low}; pass vocab_size >= {low}."
            ) from None
        raise ConfigError(f"SentencePiece could not train on these texts: {error}") from None
