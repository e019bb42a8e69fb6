"""Hypothesis-generated arguments and files: every outcome is success or one line, exit 2."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffkit.cli import main
from diffkit.runner import fit
from tests.tiny import one_thread, tiny_config  # noqa: F401  (autouse)

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

numbers = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["0", "-1", "1e400", "nan", "", "ten", "0x10", "1_000"]),
)
text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)


def _csv(rows, cols, value):
    return "\n".join(",".join([value] * cols) for _ in range(rows)).encode()


def _npy(shape):
    buf = io.BytesIO()
    np.save(buf, np.ones(shape, dtype=np.float32))
    return buf.getvalue()


contents = st.one_of(
    st.just(b""),
    st.binary(max_size=256),
    text.map(str.encode),
    st.builds(_csv, st.integers(0, 40), st.integers(1, 4), numbers),
    st.builds(_npy, st.sampled_from([(0,), (3,), (40, 1), (40, 2), (5, 3, 2)])),
    st.sampled_from(
        [
            b"[train]\nlr = 'fast'\n",
            b"[model]\nhidden = -4\n",
            b"[train]\n[[x]]",
            b"x,y\n1,2\n3,a\n",
            b"[diffusion]\nT = 100000000000\n",
        ]
    ),
)
suffixes = st.sampled_from([".csv", ".npy", ".toml", ".txt", ""])


def run(capsys, args) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    return code, err


def check(code, err):
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2 and err.startswith("error:"):
        assert err.count("\n") == 1, err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return fit(
        "toy",
        tiny_config(train={"max_steps": 2}),
        out=tmp_path_factory.mktemp("f") / "r",
        quiet=True,
    )


options = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "--epochs",
                "--batch-size",
                "--lr",
                "--devices",
                "--strategy",
                "--seed",
                "--set",
                "--domain",
                "--bogus",
                "--data",
                "--out",
            ]
        ),
        st.one_of(numbers, text, st.sampled_from(["hidden=x", "train.lr=-1", "=", "a.b=c"])),
    ),
    max_size=4,
)


@FUZZ
@given(opts=options, steps=st.sampled_from(["0", "-7", "1e3", "10000000000000", "99" * 20]))
def test_train_arguments_never_escape_as_tracebacks(opts, steps, tmp_path, capsys):
    # --max-steps is always invalid, so no example starts a training run
    args = ["train", "--domain", "toy", "--out", tmp_path / "o", "--max-steps", steps]
    code, err = run(capsys, args + [x for pair in opts for x in pair])
    assert code == 2, err
    check(code, err)


@FUZZ
@given(data=contents, suffix=suffixes)
def test_files_given_as_config_data_or_checkpoint_never_escape(
    data, suffix, run_dir, tmp_path, capsys
):
    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    check(*run(capsys, ["train", "--domain", "toy", "--config", path, "--max-steps", "0"]))
    check(
        *run(
            capsys,
            ["evaluate", "--checkpoint", run_dir, "--data", path, "--out", tmp_path / "m.json"],
        )
    )
    check(*run(capsys, ["sample", "--checkpoint", path, "--out", tmp_path / "s.csv"]))


# in-range counts stay small so an example cannot sample for minutes
counts = st.one_of(
    st.integers(-(10**30), 0),
    st.integers(1, 40),
    st.integers(10**8, 10**30),
    st.sampled_from(["1e3", "nan", "", "-0"]),
).map(str)


@FUZZ
@given(n=counts, steps=counts, sampler=st.one_of(text, st.sampled_from(["ddim", "ddpm"])))
def test_sample_arguments_never_escape(n, steps, sampler, run_dir, tmp_path, capsys):
    check(
        *run(
            capsys,
            [
                "sample",
                "--checkpoint",
                run_dir,
                "--n",
                n,
                "--steps",
                steps,
                "--sampler",
                sampler,
                "--out",
                tmp_path / "s.npy",
            ],
        )
    )
