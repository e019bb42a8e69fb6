"""Large sample and forecast requests are drawn in chunks and refused when they cannot fit."""

import importlib

import pytest
import torch

from diffkit import chunks
from diffkit.chunks import PROBE, available_memory, concat, draw_in_chunks
from diffkit.cli import main
from diffkit.errors import ConfigError
from diffkit.inference import sample_checkpoint
from tests.core import test_options
from tests.tiny import one_thread  # noqa: F401  (autouse)

toy_run = test_options.toy_run  # the fixture: a 4-step toy run, one per module


def counting_draw(calls, width=3):
    def draw(k):
        calls.append(k)
        start = sum(calls[:-1])
        return torch.arange(start, start + k, dtype=torch.float32)[:, None].expand(k, width)

    return draw


def test_a_request_is_drawn_in_chunks_and_gathered_in_order():
    calls = []
    x = draw_in_chunks(counting_draw(calls), 50, chunk=20, available=lambda: 10**12)
    assert calls == [PROBE, 20, 14]  # a small first chunk prices an item, then full ones
    torch.testing.assert_close(x[:, 0], torch.arange(50.0))
    calls.clear()
    assert draw_in_chunks(counting_draw(calls), 20, chunk=20).shape == (20, 3)
    assert calls == [20]  # one chunk: one call, as without chunking


def test_a_request_over_the_available_memory_is_refused_after_the_first_chunk():
    calls = []
    # 12 bytes an item: 1000 items in 3 copies need 36 kB, 10 kB are left
    with pytest.raises(
        ConfigError,
        match=r"1000 samples need about 36.0 kB of memory .*"
        r"more than the 10.0 kB available; ask for at most 277 at a time",
    ):
        draw_in_chunks(counting_draw(calls), 1000, chunk=100, available=lambda: 10_000)
    assert calls == [PROBE]
    # unknown memory: no refusal
    assert draw_in_chunks(counting_draw([]), 300, chunk=100, available=lambda: None).shape[0] == 300


def test_parts_of_different_widths_are_zero_padded_like_texts():
    x = concat([torch.ones(2, 3, dtype=torch.uint8), torch.full((1, 5), 2, dtype=torch.uint8)])
    assert x.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [2, 2, 2, 2, 2]]
    with pytest.raises(ConfigError, match="chunk must be a whole number"):
        draw_in_chunks(counting_draw([]), 5, chunk=0)


def test_available_memory_reads_the_machine(monkeypatch):
    free = available_memory()
    assert free is None or 0 < free < 2**50
    monkeypatch.setattr(chunks, "_meminfo_available", lambda: 5 * 2**30)
    monkeypatch.setattr(chunks, "_cgroup_left", lambda: 2**30)
    assert available_memory() == 2**30  # a container's limit wins


def test_sample_draws_chunks_with_the_seeds_stream(toy_run):
    one = sample_checkpoint(toy_run, 40, steps=3, device="cpu", chunk=64)
    again = sample_checkpoint(toy_run, 40, steps=3, device="cpu", chunk=64)
    torch.testing.assert_close(one, again, atol=0, rtol=0)
    parts = sample_checkpoint(toy_run, 40, steps=3, device="cpu", chunk=10)
    assert parts.shape == one.shape == (40, 2) and torch.isfinite(parts).all()
    torch.testing.assert_close(parts, sample_checkpoint(toy_run, 40, steps=3, chunk=10))


def test_the_sample_command_refuses_a_request_too_large_in_one_line(toy_run, tmp_path, capsys):
    out = tmp_path / "s.csv"
    args = ["sample", "--checkpoint", str(toy_run), "--n", "1000", "--steps", "2"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunks, "available_memory", lambda: 1_000)
        with pytest.raises(SystemExit) as info:
            main([*args, "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "1000 samples need about 24.0 kB of memory (8 bytes each" in err
    assert "more than the 1.0 kB available; ask for at most 41 at a time." in err
    assert not out.exists()


def test_forecast_shares_the_chunks_and_the_refusal(tmp_path, capsys):
    # a tiny TimeGrad run (the time-series tests' sizes); 6 steps ahead of 8 series, float32
    from tests.domains.timeseries.test_domain import TINY

    run = tmp_path / "ts"
    with pytest.raises(SystemExit) as info:
        main(["train", "--domain", "timeseries", "--out", str(run), *TINY, "--max-steps", "2"])
    assert info.value.code == 0
    out = tmp_path / "f.csv"
    args = ["forecast", "--checkpoint", str(run), "--steps", "2", "--out", str(out)]
    drawn = []
    with pytest.MonkeyPatch.context() as patch:
        domain = importlib.import_module("diffkit.domains.timeseries.domain")
        paths = domain.forecast_paths
        patch.setattr(domain, "forecast_paths", lambda *a, **k: drawn.append(k["num_samples"])
                      or paths(*a, **k))  # fmt: skip
        patch.setattr(chunks.draw_in_chunks, "__kwdefaults__",
                      {**chunks.draw_in_chunks.__kwdefaults__, "chunk": 8})  # fmt: skip
        with pytest.raises(SystemExit) as info:
            main([*args, "--num-samples", "30"])
        assert info.value.code == 0 and out.exists()
        assert drawn == [PROBE, 8, 6]  # 30 paths: the probe of 16, then chunks of 8
        out.unlink()
        out.with_suffix(".png").unlink()
        patch.setattr(chunks, "available_memory", lambda: 10_000)
        with pytest.raises(SystemExit) as info:
            main([*args, "--num-samples", "1000"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "1000 sample paths need about 576.0 kB" in err, err
    assert not out.exists()
