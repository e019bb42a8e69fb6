"""The judges of samples: a CNN and a perceptron, each trained once per data set and cached."""

import pytest
import torch

from diffkit.domains.images import cache, judges
from diffkit.domains.images.evaluate import MLPClassifier, class_accuracy


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Training calls by architecture, with the cache in a fresh folder."""
    monkeypatch.setenv("DIFFKIT_CACHE", str(tmp_path / "cache"))
    calls = []
    real = judges.train_classifier
    monkeypatch.setattr(
        judges, "train_classifier", lambda *a, **k: calls.append(k["arch"]) or real(*a, **k)
    )
    return calls


def small(digits_split, **kw):
    train, _ = digits_split
    return judges.judge(train.images, train.labels, steps=20, batch_size=32, **kw)


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_judge_is_trained_once_per_data_and_settings(counted, digits_split):
    first = small(digits_split)
    again = small(digits_split)
    assert counted == ["cnn"] and same_weights(first, again) and not again.training
    small(digits_split, seed=1)  # other settings: another entry
    train, _ = digits_split
    judges.judge(train.images[:700], train.labels[:700], steps=20, batch_size=32)  # other data
    assert counted == ["cnn", "cnn", "cnn"]


@pytest.mark.parametrize("damage", [b"", b"not a torch file", None])
def test_a_damaged_cache_entry_is_rebuilt_not_raised(counted, digits_split, damage):
    first = small(digits_split)
    (entry,) = (cache.cache_dir() / "classifier").glob("*.pt")
    if damage is None:  # a valid torch file of the wrong layout
        torch.save({"state": {"body.0.weight": torch.zeros(1)}}, entry)
    else:
        entry.write_bytes(damage)
    rebuilt = small(digits_split)
    assert counted == ["cnn", "cnn"] and same_weights(first, rebuilt)
    assert same_weights(small(digits_split), first) and len(counted) == 2  # and kept again


def test_an_unwritable_or_disabled_cache_still_gives_the_judge(monkeypatch, tmp_path, digits_split):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("DIFFKIT_CACHE", str(blocker / "under-a-file"))
    assert isinstance(small(digits_split), torch.nn.Module)
    monkeypatch.setenv("DIFFKIT_CACHE", "off")
    assert cache.cache_dir() is None and isinstance(small(digits_split), torch.nn.Module)


def test_the_second_judge_is_a_perceptron_that_reads_digits(counted, digits_split):
    train, held_out = digits_split
    both = judges.judges(train.images, train.labels, steps=200)
    mlp = both["mlp"]
    assert isinstance(mlp, MLPClassifier) and counted == ["cnn", "mlp"]
    assert not any(isinstance(m, torch.nn.Conv2d) for m in mlp.modules())
    assert class_accuracy(mlp, held_out.images, held_out.labels) > 0.85
    assert class_accuracy(both["cnn"], held_out.images, held_out.labels) > 0.85
