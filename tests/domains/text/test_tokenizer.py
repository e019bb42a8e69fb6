"""SentencePiece tokenizers: trained in memory, round trips, base64 travel, the rounding mask."""

import json
import pickle

import pytest
import torch

from diffkit.domains.text.data import encode_corpus
from diffkit.domains.text.grammar import restaurants
from diffkit.domains.text.tokenizer import Tokenizer, train_tokenizer
from diffkit.errors import ConfigError, DataError, MissingFileError


@pytest.fixture(scope="module")
def texts():
    return restaurants(1000, seed=0).texts


@pytest.fixture(scope="module")
def tokenizer(texts):
    return train_tokenizer(texts, vocab_size=300)


def test_special_ids_and_round_trip(tokenizer, texts):
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id, tokenizer.eos_id) == (0, 1, 2, 3)
    assert tokenizer.vocab_size == 300
    assert all(tokenizer.decode(tokenizer.encode(t)) == t for t in texts)
    odd = "Ünïcode ☃  two  spaces, unseen $ymbols"  # byte fallback: no unk, spaces kept
    assert tokenizer.unk_id not in tokenizer.encode(odd)
    assert tokenizer.decode(tokenizer.encode(odd)) == odd


def test_decode_stops_at_eos_and_drops_pad_and_bos(tokenizer, texts):
    ids = tokenizer.encode(texts[0], bos=True, eos=True)
    assert ids[0] == tokenizer.bos_id and ids[-1] == tokenizer.eos_id
    tail = tokenizer.encode("garbage after the end")
    assert tokenizer.decode(ids + tail + [0, 0]) == texts[0]
    assert tokenizer.decode(torch.tensor([2, 0, *ids[1:-1], 0])) == texts[0]
    rows = torch.tensor([[*ids, 0, 0], ids + tail[:2]])
    assert tokenizer.decode_batch(rows) == [texts[0], texts[0]]


def test_base64_text_travels_in_json_and_rebuilds_identically(tokenizer, texts, tmp_path):
    settings = json.loads(json.dumps({"tokenizer": tokenizer.to_text()}))
    rebuilt = Tokenizer.from_text(settings["tokenizer"])
    assert rebuilt == tokenizer and rebuilt.proto == tokenizer.proto
    assert [rebuilt.encode(t) for t in texts[:50]] == [tokenizer.encode(t) for t in texts[:50]]
    tokenizer.save(tmp_path / "t.model")
    assert Tokenizer.from_file(tmp_path / "t.model") == tokenizer
    assert pickle.loads(pickle.dumps(tokenizer)) == tokenizer


def test_rounding_mask_keeps_seen_pieces_and_excludes_bytes(tokenizer, texts):
    encoded = encode_corpus(tokenizer, texts, max_length=40)
    mask = tokenizer.rounding_mask(encoded)
    seen = set(encoded.ids.reshape(-1).tolist())
    assert mask.shape == (300,) and mask.dtype == torch.bool
    assert mask[tokenizer.eos_id] and mask[tokenizer.pad_id]
    assert not mask[tokenizer.bos_id] and not mask[tokenizer.unk_id]
    assert not any(mask[i] for i in range(4, 260))  # "é" is frequent enough for its own piece
    assert {i for i in range(300) if mask[i]} == (seen | {0, 3}) - {1, 2}
    assert all(tokenizer.is_byte(i) for i in range(4, 260))
    assert torch.equal(tokenizer.rounding_mask(encoded.ids.tolist()), mask)


def test_bpe_model_type(texts):
    bpe = train_tokenizer(texts, vocab_size=320, model_type="bpe")
    assert bpe.vocab_size == 320 and bpe.decode(bpe.encode(texts[1])) == texts[1]


def test_vocabulary_out_of_range_names_the_size_that_works(texts):
    with pytest.raises(ConfigError, match=r"at most (\d+) pieces; pass vocab_size <= \1") as info:
        train_tokenizer(texts, vocab_size=5000)
    largest = int(info.value.args[0].split("<= ")[1].rstrip("."))
    assert train_tokenizer(texts, vocab_size=largest).vocab_size == largest
    assert train_tokenizer(texts, vocab_size=None).vocab_size == largest
    with pytest.raises(ConfigError, match=r"too small.*at least"):
        train_tokenizer(texts, vocab_size=50)


def test_bad_inputs(tmp_path):
    with pytest.raises(ConfigError, match="model type"):
        train_tokenizer(["a b"], model_type="wordpiece")
    with pytest.raises(DataError, match="no non-empty texts"):
        train_tokenizer(["", "  "])
    with pytest.raises(MissingFileError):
        Tokenizer.from_file(tmp_path / "none.model")
    with pytest.raises(ConfigError, match="not base64"):
        Tokenizer.from_text("not base64 at all!")
    with pytest.raises(ConfigError, match="not a SentencePiece model"):
        Tokenizer.from_proto(b"\x00garbage")


def test_e2e_devset_round_trips_without_unk(data_dir):
    path = data_dir / "e2e" / "devset.csv"
    if not path.exists():
        pytest.skip(f"{path} not found; set DIFFKIT_DATA to the data folder.")
    from diffkit.domains.text.data import read

    corpus = read(path, "ref", "mr")
    tokenizer = train_tokenizer(corpus.texts, vocab_size=1000)
    encoded = [tokenizer.encode(t) for t in corpus.texts]
    assert all(tokenizer.unk_id not in ids for ids in encoded)
    assert [tokenizer.decode(ids) for ids in encoded] == list(corpus.texts)  # double spaces too
