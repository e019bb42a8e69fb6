"""The text domain's bench cases: the grammar scores are exact where they can be, the case runs."""

import math

import pytest
import torch

from diffkit.bench import Context, Skip
from diffkit.domains.text import bench
from diffkit.domains.text.baseline import ARConfig, ARModel
from diffkit.domains.text.grammar import Grammar, restaurants
from diffkit.domains.text.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(restaurants(500).texts, vocab_size=300)


def test_grammar_scores_count_non_sentences_and_an_untrained_teacher_is_uniform(tok):
    torch.manual_seed(0)
    teacher = ARModel(ARConfig(vocab_size=tok.vocab_size, width=16, depth=1, heads=2))
    with torch.no_grad():
        teacher.head.weight.zero_()  # every next token equally likely: perplexity = V
    texts = [*Grammar().sample(3, seed=1).texts, "not a sentence of it"]
    scores = bench.grammar_scores(texts, teacher, tok, 64)
    assert scores["invalid"] == 0.25
    assert math.isclose(scores["lm_score"], tok.vocab_size, rel_tol=1e-4)


def test_the_e2e_case_skips_with_a_reason_without_the_data(tmp_path):
    with pytest.raises(Skip, match=r"e2e/devset\.csv"):
        bench.e2e_path(Context(data_dir=tmp_path))
    with pytest.raises(Skip, match="--data-dir"):
        bench.e2e_path(Context())


def test_cases_per_suite():
    assert [c.id for c in bench.cases("smoke")] == ["text-grammar"]
    assert [c.id for c in bench.cases("quick")] == ["text-grammar"]
    assert [c.id for c in bench.cases("full")] == ["text-grammar", "text-e2e"]


@pytest.mark.slow
def test_the_grammar_case_scores_every_model_sampler_and_budget():
    torch.set_num_threads(1)
    res = bench.run_grammar("smoke", Context(samplers=("ddim", "heun"), nfes=(5, 10)))
    methods = {(r["library"], r["method"]) for r in res["rows"]}
    assert methods >= {("diffkit", "cdcd ddim"), ("diffkit", "cdcd heun")}
    assert methods >= {("diffkit", "masked maskgit"), ("AR baseline", "AR (ancestral)")}
    for r in res["rows"]:
        assert all(math.isfinite(r[k]) for k in ("lm_score", "invalid", "distinct_2"))
        if r["nfe_budget"] is not None:
            assert 1 <= r["nfe"] == r["calls"] <= r["nfe_budget"]
    assert res["floor"]["invalid"] == 0.0  # held-out grammar texts are all sentences
    cdcd = [r["lm_score"] for r in res["rows"] if "cdcd" in r["method"]]
    assert res["floor"]["lm_score"] < min(cdcd)  # 100 steps: far from the teacher's own texts
