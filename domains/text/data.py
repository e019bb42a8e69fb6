"""Readers for the text formats users have, the validation split, and token-id encoding.

Formats: ``.txt`` (one text per line; blank lines are skipped), ``.csv`` / ``.tsv`` (a header
row; ``text_column`` and optionally ``cond_column``), ``.jsonl`` (one JSON object per line,
same column names). Every reader returns a :class:`Corpus`: the texts and, when a condition
column is given, one condition text per row (E2E's ``mr`` for its ``ref``).

Encoding: each text becomes ``BOS tokens EOS`` then ``PAD`` up to ``max_length``; a text
too long keeps its first ``max_length - 2`` tokens and still ends in EOS, and the count of
such texts is reported (:class:`Encoded`), so a model always sees where a text ends.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from diffkit.errors import ConfigError, DataError
from diffkit.reading import check_input, read_bytes

FORMATS = (".txt", ".csv", ".tsv", ".jsonl")


@dataclass(frozen=True)
class Corpus:
    """Texts and, for conditional data, one condition text per text."""

    texts: tuple[str, ...]
    conds: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.conds is not None and len(self.conds) != len(self.texts):
            raise DataError(
                f"{len(self.texts)} texts but {len(self.conds)} conditions; pass one per text."
            )

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def conditional(self) -> bool:
        return self.conds is not None

    def subset(self, index) -> Corpus:
        """The rows at positions ``index``, in that order."""
        conds = None if self.conds is None else tuple(self.conds[i] for i in index)
        return Corpus(tuple(self.texts[i] for i in index), conds)


def _decode(path: Path) -> str:
    """The file's text; a clear error for a missing path, a directory or non-UTF-8 bytes."""
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path} is not UTF-8: byte {error.start} (line {line}) is {raw[error.start]:#04x}; "
            "re-save the file as UTF-8."
        ) from None
    if not text.strip():
        raise DataError(f"{path} is empty; pass a file with at least one text.")
    return text


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or not str(value)


def _from_rows(path: Path, rows: list[dict], text_column: str, cond_column: str | None) -> Corpus:
    columns = list(dict.fromkeys(key for row in rows for key in row))  # union, in order
    for column in (text_column, cond_column):
        if column is not None and column not in columns:
            raise DataError(
                f"{path} has no column {column!r}; its columns are "
                f"{', '.join(map(repr, columns))}: pass one as --text-column / --cond-column."
            )
    for column, what in ((text_column, "text"), (cond_column, "condition")):
        if column is None:
            continue
        bad = sum(_missing(row.get(column)) for row in rows)
        if bad:
            raise DataError(
                f"{bad} of {len(rows)} rows of {path} have an empty or NaN {what} in column "
                f"{column!r}; fill or drop them."
            )
    texts = tuple(str(row[text_column]) for row in rows)
    conds = None if cond_column is None else tuple(str(row[cond_column]) for row in rows)
    return Corpus(texts, conds)


def read_txt(path) -> Corpus:
    """One text per line of a UTF-8 file; blank lines are skipped."""
    path = Path(path)
    lines = [line.strip() for line in _decode(path).splitlines()]
    return Corpus(tuple(line for line in lines if line))


def read_table(path, text_column: str = "text", cond_column: str | None = None) -> Corpus:
    """A ``.csv`` or ``.tsv`` file with a header row (the delimiter follows the suffix)."""
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        rows = list(csv.DictReader(io.StringIO(_decode(path)), delimiter=delimiter))
    except csv.Error:
        raise DataError(
            f"{path} is not a readable {path.suffix} table (csv.Error); fix its quoting or lines."
        ) from None
    if not rows:
        raise DataError(f"{path} has a header but no rows; pass a file with at least one text.")
    return _from_rows(path, rows, text_column, cond_column)


def read_jsonl(path, text_column: str = "text", cond_column: str | None = None) -> Corpus:
    """One JSON object per non-blank line, each with ``text_column`` (and ``cond_column``)."""
    path = Path(path)
    rows = []
    for number, line in enumerate(_decode(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"line {number} of {path} is not JSON ({error.msg}); fix it.") from None
        if not isinstance(row, dict):
            raise DataError(f"line {number} of {path} is not a JSON object; write one per line.")
        rows.append(row)
    return _from_rows(path, rows, text_column, cond_column)


def read(path, text_column: str = "text", cond_column: str | None = None) -> Corpus:
    """Read any supported file by its suffix (see the module docstring)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.exists():  # a folder, a device or an empty file first: the suffix cannot say
        check_input(path)
    if suffix not in FORMATS:
        raise ConfigError(
            f"cannot read {path.name!r}: unknown file type {suffix or '(none)'!r}; "
            f"pass one of {', '.join(FORMATS)}."
        )
    if suffix == ".txt":
        if cond_column is not None:
            raise ConfigError(
                f"{path.name} is plain text and has no columns; drop --cond-column or pass a "
                ".csv/.tsv/.jsonl file with a condition column."
            )
        return read_txt(path)
    if suffix == ".jsonl":
        return read_jsonl(path, text_column, cond_column)
    return read_table(path, text_column, cond_column)


def split(corpus: Corpus, val_fraction: float = 0.1, seed: int = 0) -> tuple[Corpus, Corpus]:
    """Seeded train / validation split.

    Conditional data is split by condition value (every row of one condition lands on one
    side, so validation conditions are unseen in training); otherwise by row. Validation
    gets at least one group and at most all groups but one.

    Returns
    -------
    (train, val)
    """
    train, val = split_rows(corpus, val_fraction, seed)
    return corpus.subset(train), corpus.subset(val)


def split_rows(corpus: Corpus, val_fraction: float = 0.1, seed: int = 0):
    """The row positions (train, val) of :func:`split`, to split a parallel corpus alike."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction is {val_fraction}; pass a number between 0 and 1.")
    keys = corpus.conds if corpus.conditional else tuple(range(len(corpus)))
    groups = list(dict.fromkeys(keys))  # unique, in first-seen order
    if len(groups) < 2:
        what = "distinct conditions" if corpus.conditional else "texts"
        raise DataError(f"need at least 2 {what} to split off a validation set; add more data.")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(groups), generator=generator).tolist()
    size = min(max(1, round(val_fraction * len(groups))), len(groups) - 1)
    val_keys = {groups[i] for i in order[:size]}
    val = [i for i, key in enumerate(keys) if key in val_keys]
    train = [i for i, key in enumerate(keys) if key not in val_keys]
    return train, val


@dataclass(frozen=True)
class Encoded:
    """Token ids of a list of texts, padded to one length, and what truncation cost."""

    ids: torch.Tensor  # (N, L) long: BOS tokens EOS PAD...
    pad: torch.Tensor  # (N, L) bool: True at real tokens (BOS and EOS included)
    truncated: int  # texts longer than L that lost their tail
    longest: int  # the longest text in tokens, BOS and EOS included

    def report(self, what: str = "texts", knob: str = "max_length") -> str:
        """A sentence for the user about truncation (empty when nothing was cut); ``knob``
        is the setting that fixed the length."""
        if not self.truncated:
            return ""
        n, length = self.ids.shape
        return (
            f"{self.truncated} of {n} {what} are longer than {knob} {length} (longest "
            f"{self.longest} tokens) and were cut; raise {knob} to keep them whole."
        )


def encode_corpus(tokenizer, texts, max_length: int) -> Encoded:
    """Encode ``texts`` as ``BOS tokens EOS PAD...`` rows of ``max_length`` ids.

    Parameters
    ----------
    tokenizer
        A :class:`~diffkit.domains.text.tokenizer.Tokenizer` (anything with ``encode``,
        ``pad_id``, ``bos_id``, ``eos_id``).
    texts
        Sequence of strings.
    max_length
        L, at least 3 (BOS, one token, EOS).
    """
    if max_length < 3:
        raise ConfigError(f"max_length is {max_length}; pass at least 3 (BOS, a token, EOS).")
    pieces = [tokenizer.encode(text) for text in texts]
    ids = torch.full((len(pieces), max_length), tokenizer.pad_id, dtype=torch.long)
    truncated = longest = 0
    for row, tokens in enumerate(pieces):
        longest = max(longest, len(tokens) + 2)
        if len(tokens) + 2 > max_length:
            truncated += 1
            tokens = tokens[: max_length - 2]
        ids[row, : len(tokens) + 2] = torch.tensor(
            [tokenizer.bos_id, *tokens, tokenizer.eos_id], dtype=torch.long
        )
    lengths = torch.tensor([min(len(t) + 2, max_length) for t in pieces], dtype=torch.long)
    pad = torch.arange(max_length)[None] < lengths[:, None]  # (N, L)
    return Encoded(ids, pad, truncated, longest)


class TextDataset(Dataset):
    """Encoded texts (and conditions) as a torch Dataset of dicts.

    Items are ``{"ids": (L,) long, "pad": (L,) bool}`` plus, for conditional data,
    ``{"cond_ids": (Lc,) long, "cond_pad": (Lc,) bool}``; ``pad`` is True at real tokens.
    """

    def __init__(self, texts: Encoded, conds: Encoded | None = None):
        if conds is not None and len(conds.ids) != len(texts.ids):
            raise DataError(f"{len(texts.ids)} texts but {len(conds.ids)} conditions.")
        self.texts, self.conds = texts, conds

    @classmethod
    def from_corpus(
        cls, corpus: Corpus, tokenizer, max_length: int, cond_max_length: int | None = None
    ) -> TextDataset:
        """Encode ``corpus`` (conditions to ``cond_max_length``, default ``max_length``)."""
        conds = None
        if corpus.conditional:
            conds = encode_corpus(tokenizer, corpus.conds, cond_max_length or max_length)
        return cls(encode_corpus(tokenizer, corpus.texts, max_length), conds)

    def __len__(self) -> int:
        return len(self.texts.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"ids": self.texts.ids[i], "pad": self.texts.pad[i]}
        if self.conds is not None:
            item |= {"cond_ids": self.conds.ids[i], "cond_pad": self.conds.pad[i]}
        return item
