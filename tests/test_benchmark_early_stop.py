"""benchmarks/text_masked_gap.py's early stop: when a run's validation curve has stalled."""

import sys

import pytest

from tests.reference import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their sibling modules by name

from text_masked_gap import stalled


def curve(*bits: float) -> list[dict]:
    return [{"step": 1000 * (i + 1), "bits_per_text": b} for i, b in enumerate(bits)]


@pytest.mark.parametrize(
    ("bits", "patience", "expected"),
    [
        ((9, 8, 8.5, 8.2), 2, True),  # two checks since the best at 8
        ((9, 8, 8.5, 7.9), 2, False),  # the last beat it
        ((9, 8, 8.0, 8.0), 2, True),  # a tie is no improvement
        ((9, 8, 8.5), 3, False),  # not enough checks yet to tell
        ((9, 8, 8.5, 8.6), None, False),  # no patience: never stops
        ((9, 8, 8.5, 8.6), 0, False),
    ],
)
def test_stalled_only_after_patience_checks_without_a_better_bound(bits, patience, expected):
    assert stalled(curve(*bits), patience) is expected


def test_a_run_resumed_from_a_check_goes_on_exactly_as_the_uninterrupted_one():
    import torch
    from text_masked_gap import Variant, train

    from diffkit.domains.text.domain import TextConfig, load_data

    config = TextConfig(model="masked", n_train=60, cond_column="mr", width=16, depth=1,
                        heads=2, dropout=0.1)  # fmt: skip
    data = load_data(config, None)
    v = data.val
    val = (
        v.texts.ids[:4],
        v.texts.pad[:4],
        {"cond_ids": v.conds.ids[:4], "cond_pad": v.conds.pad[:4]},
    )
    s = {"steps": 8, "batch": 4, "checks": 4, "val_t": 2, "keep_best": True}
    variant = Variant("m", per_masked=True, lr=1e-3)
    snaps = []
    whole, curve = train(variant, data.config, data, val, s,
                         on_check=lambda net, c, best, snap: snaps.append(snap()))  # fmt: skip
    assert [c["step"] for c in snaps[1]["curve"]] == [2, 4]
    seen = []  # the checks the resumed run makes itself: only those after step 4
    resumed, again = train(
        variant, data.config, data, val, s, resume=snaps[1],
        on_check=lambda net, c, best, snap: seen.append(c[-1]["step"]),
    )  # fmt: skip
    assert seen == [6, 8]
    assert [c["bits_per_text"] for c in again] == [c["bits_per_text"] for c in curve]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert not torch.equal(snaps[0]["net"]["embed.weight"], snaps[3]["net"]["embed.weight"])
