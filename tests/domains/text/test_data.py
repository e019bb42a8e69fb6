"""Text readers, the validation split, encoding and the dataset; each bad input's error."""

import json

import pytest
import torch

from diffkit.domains.text.data import Corpus, TextDataset, encode_corpus, read, split
from diffkit.domains.text.grammar import restaurants
from diffkit.domains.text.tokenizer import train_tokenizer
from diffkit.errors import ConfigError, DataError, MissingFileError

ROWS = [
    ("name[The Eagle], food[French]", "The Eagle serves French food."),
    ("name[The Eagle], food[French]", "French food at The Eagle."),
    ("name[The Mill], area[riverside]", "The Mill, by the river, says hi."),
    ("name[Zizzi]", "Zizzi, ünïcode ok."),
]


def _csv(path, rows=ROWS, sep=","):
    quote = lambda s: '"' + s.replace('"', '""') + '"'  # noqa: E731
    lines = [sep.join(["mr", "ref"])] + [sep.join(map(quote, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_tsv_jsonl_and_txt_read_the_same_texts(tmp_path):
    expected = Corpus(tuple(r for _, r in ROWS), tuple(m for m, _ in ROWS))
    assert read(_csv(tmp_path / "a.csv"), "ref", "mr") == expected
    assert read(_csv(tmp_path / "a.tsv", sep="\t"), "ref", "mr") == expected
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps({"mr": m, "ref": r}) for m, r in ROWS) + "\n\n")
    assert read(jsonl, "ref", "mr") == expected
    assert read(jsonl, "ref") == Corpus(expected.texts)
    txt = tmp_path / "a.txt"
    txt.write_text("\n".join(expected.texts) + "\n\n", encoding="utf-8")
    assert read(txt) == Corpus(expected.texts)


def test_e2e_devset(data_dir):
    path = data_dir / "e2e" / "devset.csv"
    if not path.exists():
        pytest.skip(f"{path} not found; set DIFFKIT_DATA to the data folder.")
    corpus = read(path, "ref", "mr")
    assert len(corpus) == 4672 and corpus.texts[0].startswith("There is a place in the city")
    train, val = split(corpus, 0.1, seed=0)
    assert len(train) + len(val) == 4672 and not set(train.conds) & set(val.conds)


def test_split_by_condition_keeps_each_condition_on_one_side():
    corpus = restaurants(400, seed=0)
    train, val = split(corpus, 0.2, seed=1)
    assert len(train) + len(val) == 400
    assert not set(train.conds) & set(val.conds)
    groups = len(set(corpus.conds))
    assert len(set(val.conds)) == round(0.2 * groups)
    assert split(corpus, 0.2, seed=1) == (train, val)
    assert split(corpus, 0.2, seed=2) != (train, val)


def test_split_by_line_without_conditions():
    corpus = Corpus(tuple(f"text {i}" for i in range(10)))
    train, val = split(corpus, 0.3, seed=0)
    assert len(val) == 3 and sorted(train.texts + val.texts) == sorted(corpus.texts)
    with pytest.raises(DataError, match="at least 2 texts"):
        split(Corpus(("one",)))
    with pytest.raises(DataError, match="distinct conditions"):
        split(Corpus(("a", "b"), ("same", "same")))
    with pytest.raises(ConfigError, match="between 0 and 1"):
        split(corpus, 1.0)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(restaurants(500).texts, vocab_size=300)


def test_encode_frames_pads_and_reports_truncation(tokenizer):
    texts = ["The Eagle is a pub.", "There is an expensive Indian coffee shop called Alimentum."]
    n0, n1 = (len(tokenizer.encode(t)) for t in texts)
    length = n0 + 2 + 1  # the first fits with one PAD, the second is cut
    encoded = encode_corpus(tokenizer, texts, length)
    assert encoded.ids.shape == (2, length) and encoded.ids.dtype == torch.long
    assert encoded.ids[0].tolist() == [2, *tokenizer.encode(texts[0]), 3, 0]
    assert encoded.pad[0].tolist() == [True] * (n0 + 2) + [False]
    assert encoded.ids[1, -1] == tokenizer.eos_id and encoded.pad[1].all()
    assert (encoded.truncated, encoded.longest) == (1, n1 + 2)
    assert "1 of 2 texts are longer than max_length" in encoded.report()
    assert encoded.report("MRs", "cond_length").endswith("raise cond_length to keep them whole.")
    assert tokenizer.decode(encoded.ids[0]) == texts[0]
    assert encode_corpus(tokenizer, texts, 80).report() == ""
    with pytest.raises(ConfigError, match="at least 3"):
        encode_corpus(tokenizer, texts, 2)


def test_dataset_items(tokenizer):
    corpus = restaurants(8, seed=0)
    data = TextDataset.from_corpus(corpus, tokenizer, max_length=64, cond_max_length=96)
    item = data[3]
    assert len(data) == 8 and set(item) == {"ids", "pad", "cond_ids", "cond_pad"}
    assert item["ids"].shape == (64,) and item["cond_ids"].shape == (96,)
    assert item["pad"].dtype == torch.bool and item["cond_pad"].dtype == torch.bool
    assert tokenizer.decode(item["ids"]) == corpus.texts[3]
    assert tokenizer.decode(item["cond_ids"]) == corpus.conds[3]
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    assert batch["ids"].shape == (4, 64)
    plain = TextDataset.from_corpus(Corpus(corpus.texts), tokenizer, max_length=32)
    assert set(plain[0]) == {"ids", "pad"}


def test_bad_files_each_give_one_clear_error(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        read(tmp_path / "absent.csv")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DataError, match="is a folder; pass a file inside it"):
        read(tmp_path / "folder.csv")
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(DataError, match="is empty"):
        read(tmp_path / "empty.txt")
    (tmp_path / "header.csv").write_text("mr,ref\n")
    with pytest.raises(DataError, match="no rows"):
        read(tmp_path / "header.csv", "ref")
    with pytest.raises(DataError, match=r"no column 'text'; its columns are 'mr', 'ref'"):
        read(_csv(tmp_path / "a.csv"))
    with pytest.raises(ConfigError, match=r"unknown file type '.parquet'"):
        read(tmp_path / "a.parquet")
    with pytest.raises(ConfigError, match="no columns"):
        read(tmp_path / "a.txt", cond_column="mr")
    (tmp_path / "latin1.txt").write_bytes("fine\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8: byte 8 \(line 2\) is 0xe9"):
        read(tmp_path / "latin1.txt")


def test_empty_or_nan_conditions_are_counted(tmp_path):
    rows = [*ROWS, ("", "No condition here."), ("", "Nor here.")]
    with pytest.raises(DataError, match=r"2 of 6 rows .* empty or NaN condition in column 'mr'"):
        read(_csv(tmp_path / "a.csv", rows), "ref", "mr")
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"ref": "x", "mr": NaN}\n{"ref": "y", "mr": null}\n{"ref": "z", "mr": "m"}\n')
    with pytest.raises(DataError, match="2 of 3 rows"):
        read(jsonl, "ref", "mr")
    jsonl.write_text('{"ref": "x"}\nnot json\n')
    with pytest.raises(DataError, match=r"line 2 .* not JSON"):
        read(jsonl, "ref")
