"""benchmarks/text.py end to end on a tiny E2E-like folder made from the built-in grammar."""

import csv
import importlib.util
import json
from pathlib import Path

from diffkit.domains.text.grammar import restaurants
from tests.tiny import one_thread  # noqa: F401  (autouse)

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "text.py"
TINY = {
    "budget": 1, "protocols": ("b",), "width": 16, "depth": 1, "heads": 2, "batch": 8,
    "max_length": 24, "samples": 3, "mrs": 3, "nll_texts": 3, "nll_steps": 3,
    "samplers": (("ddpm", 3), ("ddim", 2), ("dpmpp_2m", 2)), "guidance": (1.0, 2.0),
    "val_mrs": 2, "length": 3, "dropout": 0.0, "vocab": None,
}  # fmt: skip


def write(path: Path, n: int, seed: int) -> None:
    corpus = restaurants(n, seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["mr", "ref"])
        writer.writerows(zip(corpus.conds, corpus.texts, strict=True))


def test_the_benchmark_runs_protocol_b_and_writes_json_and_markdown(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("text_benchmark", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setitem(bench.SETTINGS, "quick", TINY)
    data = tmp_path / "e2e"
    data.mkdir()
    write(data / "devset.csv", 300, 0)
    write(data / "testset_w_refs.csv", 60, 1)
    bench.main(["--quick", "--data", str(data), "--results", str(tmp_path / "out")])
    result = json.loads((tmp_path / "out" / "text-quick.json").read_text())
    models = result["protocols"]["b"]["models"]
    assert set(models) == {"diffusion_lm", "cdcd", "ar", "masked"}
    assert {"ancestral 200", "cached 200", "MaskGIT 10"} <= set(models["masked"]["samplers"])
    assert models["masked"]["ar_conditional_bits_per_token"] > 0  # beside the MR-prefixed AR
    assert set(models["cdcd"]["samplers"]) == {"ancestral 3", "DDIM 2", "DPM-Solver++(2M) 2"}
    assert models["cdcd"]["rounding_accuracy"] == 1.0
    assert "| ar |" in (tmp_path / "out" / "text-quick.md").read_text()


def test_the_benchmark_skips_without_the_data(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("text_benchmark", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--quick", "--data", str(tmp_path)])
    assert "skipped: E2E not found" in capsys.readouterr().out
