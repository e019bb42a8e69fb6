"""The text domain end to end: CLI train -> sample -> evaluate on the built-in grammar."""

import json

import pytest
import torch

from diffkit.checkpoint import load_checkpoint
from diffkit.cli import main
from diffkit.domains.text.domain import TextConfig, build_network, load_data, save_samples
from diffkit.domains.text.generate import texts_to_tensor
from diffkit.domains.text.tokenizer import Tokenizer
from diffkit.inference import sample_checkpoint
from tests.tiny import one_thread  # noqa: F401  (autouse)

MODEL = {
    "width": 32,
    "depth": 1,
    "heads": 2,
    "n_train": 300,
    "cond_column": "mr",
    "eval_samples": 4,
    "eval_steps": 3,
    "nll_texts": 4,
    "nll_steps": 3,
    "infill_texts": 3,
}
TRAIN = {"batch_size": 8, "warmup_steps": 2, "checkpoint_every": 6, "log_every": 3}
SETS = [f"--set={k}={v}" for k, v in MODEL.items()] + [
    f"--set=train.{k}={v}" for k, v in {**TRAIN, "accelerator": "cpu"}.items()
]


def run_main(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "run"
    with pytest.MonkeyPatch.context():
        try:
            main(
                [
                    "train",
                    "--domain",
                    "text",
                    "--out",
                    str(out),
                    "--max-steps",
                    "6",
                    "--quiet",
                    *SETS,
                ]
            )
        except SystemExit as e:
            assert not e.code
    return out


def test_train_saves_the_tokenizer_inside_the_checkpoint(run_dir):
    found = load_checkpoint(run_dir)
    assert found.step == 6 and found.domain == "text"
    settings = found.config["settings"]
    tok = Tokenizer.from_text(settings["tokenizer"])
    assert tok.vocab_size == found.config["model"]["vocab_size"] > 0
    text = "The Eagle is a French pub by the riverside."
    assert tok.decode(tok.encode(text)) == text
    assert (
        found.config["diffusion"]["schedule"] == "sqrt" and found.config["diffusion"]["T"] == 2000
    )
    assert found.config["prediction"] == "x0"


def test_sample_writes_one_text_per_line(run_dir, tmp_path, capsys):
    out = tmp_path / "s.txt"
    code, stdout, err = run_main(
        capsys, "sample", "--checkpoint", run_dir, "--n", "5", "--steps", "4", "--out", out
    )
    assert code == 0, err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5 and "saved 5 samples" in stdout
    assert not any("<pad>" in line or "</s>" in line for line in lines)


def test_conditional_guided_infilling_and_length_options(run_dir):
    def draw(**options):
        x = sample_checkpoint(run_dir, 3, steps=3, options=options)
        from diffkit.domains.text.generate import tensor_to_texts

        return tensor_to_texts(x)

    assert len(draw(cond="name[The Mill], eatType[pub]", guidance=2.0)) == 3
    for text in draw(infill="The ___ is a pub near ___.", infill_span=2):
        assert text.startswith("The ") and " is a pub near " in text and text.endswith(".")
    from diffkit.domains.text.generate import tokenizer_of

    tok = tokenizer_of(load_checkpoint(run_dir).config["settings"])
    for text in draw(length=6):
        assert len(tok.encode(text)) <= 6  # 6 pieces; decoding may merge a piece or two


def test_evaluate_reports_the_text_metrics(run_dir, tmp_path, capsys):
    out = tmp_path / "m.json"
    code, _, err = run_main(capsys, "evaluate", "--checkpoint", run_dir, "--out", out)
    assert code == 0, err
    m = json.loads(out.read_text())
    for key in (
        "distinct_2",
        "self_bleu",
        "copy_rate",
        "grammar_acceptance",
        "bits_per_token",
        "bits_per_char",
        "grammar_bits_per_token",
        "bleu",
        "rouge_l",
        "slot_error",
        "infill_exact_match",
    ):
        assert key in m, key
    assert m["bits_per_token"] > m["grammar_bits_per_token"] > 0  # the floor is below
    assert 0 <= m["grammar_acceptance"] <= 1 and 0 <= m["slot_error"] <= 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--out", "s.csv"], "must end in .txt or .jsonl"),
        (["--guidance", "2"], "--guidance needs --cond"),
    ],
)
def test_bad_sample_inputs_give_one_line_errors(run_dir, tmp_path, capsys, args, message):
    args = [a if a != "s.csv" else tmp_path / a for a in args]
    code, _, err = run_main(
        capsys, "sample", "--checkpoint", run_dir, "--n", "2", "--steps", "2", *args
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_temperature_is_refused_for_a_gaussian_diffusion_lm(run_dir, tmp_path, capsys):
    code, _, err = run_main(
        capsys, "sample", "--checkpoint", run_dir, "--n", "2", "--steps", "2",
        "--temperature", "0.5", "--out", tmp_path / "t.txt",
    )  # fmt: skip
    assert code == 2 and "drop --temperature" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.txt").exists()


def test_bad_template_options_give_one_line_errors(run_dir):
    from diffkit.errors import ConfigError

    with pytest.raises(ConfigError, match="at least one blank"):
        sample_checkpoint(run_dir, 1, steps=2, options={"infill": "no blank"})
    with pytest.raises(ConfigError, match="makes texts of at most"):
        sample_checkpoint(run_dir, 1, steps=2, options={"length": 100})
    with pytest.raises(ConfigError, match="not both"):
        sample_checkpoint(run_dir, 1, steps=2, options={"length": 3, "infill": "a ___"})
    with pytest.raises(ConfigError, match="unknown option --colour"):
        sample_checkpoint(run_dir, 1, steps=2, options={"colour": 3})


@pytest.mark.parametrize(
    "sets, message",
    [
        (["--set=model=gpt"], "unknown model.model 'gpt'"),
        (["--set=width=30", "--set=heads=4"], "multiple of model.heads"),
        (["--set=max_length=2"], "max_length must lie in 3..4096 (or be left out"),
        (["--set=model=diffusion_lm", "--set=time_warp=true"], "time_warp is part of the cdcd"),
        (["--set=vocab_size=5000"], "too large for this corpus"),
        (["--set=vocab_size=2"], "vocab_size must lie in 4..1000000"),
        (["--set=cond_column="], "cond_column must not be empty; leave it out"),
    ],
)
def test_bad_train_inputs_give_one_line_errors(tmp_path, capsys, sets, message):
    code, _, err = run_main(
        capsys,
        "train",
        "--domain",
        "text",
        "--out",
        tmp_path / "r",
        "--max-steps",
        "1",
        "--quiet",
        "--set=n_train=100",
        *sets,
    )
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_save_samples_writes_txt_and_jsonl(tmp_path):
    texts = ["The Mill is a pub.", "Café Sicilia"]
    save_samples(texts_to_tensor(texts), tmp_path / "a.txt")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8").splitlines() == texts
    save_samples(texts_to_tensor(texts), tmp_path / "a.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == texts


def test_load_data_completes_the_vocab_size_and_keeps_only_used_pieces():
    config = TextConfig(n_train=200)
    data = load_data(config, None)
    tok = Tokenizer.from_text(data.settings["tokenizer"])
    assert data.config.vocab_size == tok.vocab_size
    allowed = set(data.settings["allowed"])
    assert tok.bos_id not in allowed and tok.eos_id in allowed and tok.pad_id in allowed
    assert all(not tok.is_byte(i) for i in allowed)  # the grammar is ASCII but for "é"
    net = build_network(data.config)
    batch = torch.utils.data.default_collate([data.train[i] for i in range(4)])
    length = data.config.max_length  # auto: the longest training text
    assert batch["ids"].shape == (4, length) and 10 < length < 64
    assert data.train.texts.truncated == 0
    assert net(net.embed(batch["ids"]), torch.zeros(4)).shape == (4, length, 16)


def test_the_ar_baseline_trains_samples_and_evaluates_through_the_same_engine(tmp_path, capsys):
    out = tmp_path / "ar"
    sets = [s for s in SETS if "cond_column" not in s]
    code, _, err = run_main(
        capsys,
        "train",
        "--domain",
        "text",
        "--out",
        out,
        "--max-steps",
        "3",
        "--quiet",
        "--set=model=ar",
        *sets,
    )
    assert code == 0, err
    code, _, err = run_main(
        capsys, "sample", "--checkpoint", out, "--n", "3", "--out", tmp_path / "a.txt"
    )
    assert code == 0, err
    assert len((tmp_path / "a.txt").read_text(encoding="utf-8").splitlines()) == 3
    greedy = [
        run_main(
            capsys,
            "sample",
            "--checkpoint",
            out,
            "--n",
            "3",
            "--seed",
            seed,
            "--temperature",
            "0",
            "--out",
            tmp_path / f"g{seed}.txt",
        )
        for seed in (0, 1)
    ]
    assert all(code == 0 for code, _, _ in greedy)
    g0, g1 = ((tmp_path / f"g{seed}.txt").read_text(encoding="utf-8") for seed in (0, 1))
    assert g0 == g1 and len(set(g0.splitlines())) == 1  # greedy: one text, whatever the seed
    code, _, err = run_main(capsys, "evaluate", "--checkpoint", out, "--out", tmp_path / "m.json")
    assert code == 0, err
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["bits_per_token"] > m["grammar_bits_per_token"] and "infill_bleu" not in m
    from diffkit.domains.text.evaluate import teacher_perplexity

    assert teacher_perplexity(str(out), ["The Mill is a pub."]) > 1.0


def test_the_networks_have_comparable_parameter_counts():
    from diffkit.domains.text.blocks import count_parameters

    counts = {
        m: count_parameters(
            build_network(TextConfig(model=m, vocab_size=1000, max_length=64, width=128))
        )
        for m in ("diffusion_lm", "cdcd", "ar")
    }
    assert abs(counts["diffusion_lm"] / counts["ar"] - 1) < 0.1


@pytest.mark.slow
def test_a_few_hundred_steps_on_the_grammar_lower_the_loss_and_raise_acceptance(tmp_path):
    """About 1-3 minutes on a loaded 2-core CPU (CDCD + self-conditioning, 400 steps)."""
    from diffkit.config import merge
    from diffkit.domains.text.generate import free_template, sample_ids
    from diffkit.domains.text.grammar import Grammar
    from diffkit.inference import load_model
    from diffkit.registry import get_domain
    from diffkit.runner import fit, resolve_config
    from diffkit.training import mix_seed

    domain = get_domain("text")
    sections = {
        "model": {"width": 64, "depth": 2},
        "train": {"max_steps": 400, "checkpoint_every": 400, "accelerator": "cpu"},
    }
    config = resolve_config(domain, merge(sections))
    data = load_data(config.model, None)
    grammar, schedule = Grammar(), config.diffusion.build_schedule()
    batch = torch.utils.data.default_collate([data.val[i] for i in range(64)])

    def scores(net):
        g = torch.Generator().manual_seed(mix_seed(0, 2))
        loss = domain.loss(
            net.eval(), batch, schedule, prediction="x0", weighting=None, generator=g
        )
        tok = Tokenizer.from_text(data.settings["tokenizer"])
        allowed = torch.zeros(tok.vocab_size, dtype=torch.bool)
        allowed[data.settings["allowed"]] = True
        tpl = free_template(tok, data.config.max_length, allowed)
        ids = sample_ids(net, schedule, 64, tpl, sampler="ddpm", steps=200, clamp=False,
                         generator=torch.Generator().manual_seed(0))  # fmt: skip
        texts = tok.decode_batch(ids)
        return loss["loss"].mean().item(), sum(map(grammar.accepts, texts)) / len(texts)

    torch.manual_seed(config.train.seed)
    before = scores(build_network(data.config))
    run = fit(domain, config, out=tmp_path / "run", quiet=True)
    after = scores(load_model(run)[1])
    assert after[0] < 0.5 * before[0]
    assert before[1] == 0 and after[1] >= 0.05, (before, after)


def test_sample_flags_come_from_the_text_domain(run_dir, tmp_path, capsys):
    out = tmp_path / "g.jsonl"
    code, _, err = run_main(
        capsys, "sample", "--checkpoint", run_dir, "--n", "2", "--steps", "3", "--out", out,
        "--cond", "name[The Mill], eatType[pub]", "--guidance", "2",
    )  # fmt: skip
    assert code == 0, err
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    code, stdout, _ = run_main(capsys, "sample", "--checkpoint", run_dir, "--help")
    assert code == 0 and all(f in stdout for f in ("--cond", "--infill", "--length", "--guidance"))
