"""The CLI fuzz test (issue 16): bad input over every command and every domain.

Every case asserts (:func:`tests.cli_harness.check`): no traceback; exit code 2 for a user
error and 0 for a valid call; one ``error:`` line naming the problem and the fix; nothing
written outside ``--out`` and the run directory; every run directory byte-identical after
a failed command; no content of a file a run names in any message. The cases: a table of
hand-made ones (bad files x every reader, hostile run copies x every command, numbers out
of range x every bounded flag, damaged-run attempts) and hypothesis-generated arguments and
files. Four tiny runs (one per domain) are trained once per session.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli_harness import (
    DOMAINS,
    HOSTILE,
    SECRET,
    Outcome,
    Sandbox,
    bad_files,
    check,
    hostile_run,
    train_tiny,
)
from tests.tiny import one_thread  # noqa: F401  (autouse)


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    files = bad_files(base / "in")
    runs = {d: train_tiny(d, base / "runs" / d) for d in DOMAINS}
    made: dict[tuple[str, str], Path] = {}

    def hostile(domain: str, name: str) -> Path:
        if (domain, name) not in made:
            dest = base / "hostile" / f"{domain}-{name}"
            made[domain, name] = hostile_run(runs[domain], dest, name, files)
        return made[domain, name]

    return {
        "files": files,
        "runs": runs,
        "hostile": hostile,
        "all_runs": lambda: [*runs.values(), *made.values()],
    }


def run_case(env, root: Path, args, expect="any", says=None):
    box = Sandbox(root, env)
    filled = [box.fill(a) for a in args]
    secret = {str(env["files"][k]) for k in ("secret", "text-as-npy")}
    outcome = box.run(filled)
    check(outcome, filled, box.root, expect, says, quoted=bool(secret & set(filled)))
    return outcome


# ---- the table -------------------------------------------------------------------------

OUT = {"toy": "{out:s.csv}", "timeseries": "{out:s.csv}", "images": "{out:s.npy}"}
OUT["text"] = "{out:s.txt}"

READERS = {  # every command that reads a file the user names, with the file last
    **{
        f"train-{d}": ["train", "--domain", d, "--out", "{out:run}", "--max-steps", "1", "--data"]
        for d in DOMAINS
    },
    **{
        f"evaluate-{d}": [
            *("evaluate", "--checkpoint", f"{{run:{d}}}", "--out", "{out:m.json}", "--data")
        ]
        for d in DOMAINS
    },
    "forecast": ["forecast", "--checkpoint", "{run:timeseries}", "--out", "{out:f.csv}", "--data"],
    "config": ["train", "--domain", "toy", "--out", "{out:run}", "--config"],
    "tokenizer": ["train", "--domain", "text", "--out", "{out:run}", "--tokenizer"],
    "impute": ["impute", "--checkpoint", "{run:timeseries}", "--out", "{out:filled.csv}", "--data"],
    "inpaint": [
        *("sample", "--checkpoint", "{run:images}", "--n", "1", "--steps", "1"),
        *("--out", "{out:s.npy}", "--mask", "{file:one-cell}", "--inpaint"),
    ],
}
FILES = [
    "missing", "dir", "null", "zero", "fifo", "link-zero", "empty", "binary", "npy-as-csv",
    "trunc-gz", "trunc-txt-gz", "complex", "bool", "string", "secret", "text-as-npy",
    "one-cell",
]  # fmt: skip
SAYS = {
    "missing": "does not exist",
    "dir": "is a folder",
    "null": "not a regular file",
    "zero": "not a regular file",
    "fifo": "not a regular file",
    "link-zero": "not a regular file",
    "empty": "is empty",
}
FOLDERS_OK = {"train-images", "evaluate-images"}  # a folder of images is data there

TABLE = []
for name, command in READERS.items():
    for file in FILES:
        says = SAYS.get(file)
        if file == "dir" and name in FOLDERS_OK:
            says = "holds no"
        TABLE.append(
            pytest.param([*command, f"{{file:{file}}}"], "error", says, id=f"{name}-{file}")
        )

EVERY = ["sample", "evaluate"]
for domain in DOMAINS:
    for name in HOSTILE:
        if name == "huge-shape" and domain != "images":
            continue
        ckpt = f"{{hostile:{domain}:{name}}}"
        # a run naming a vanished or harmless file still samples where sampling reads no data
        expect = "any" if name in ("secret", "secret-txt", "missing") else "error"
        commands = {
            "sample": [
                *("sample", "--checkpoint", ckpt, "--n", "2", "--steps", "2", "--out", OUT[domain])
            ],
            "evaluate": ["evaluate", "--checkpoint", ckpt, "--out", "{out:m.json}"],
        }
        if domain == "timeseries":
            commands["forecast"] = ["forecast", "--checkpoint", ckpt, "--steps", "2"]
            commands["forecast"] += ["--out", "{out:f.csv}"]
        if name in ("secret", "zero", "fifo", "trunc-json", "model-typo"):
            commands["resume"] = ["train", "--domain", domain, "--out", ckpt, "--resume"]
        for command, args in commands.items():
            sure = "error" if command == "evaluate" and name != "model-typo" else expect
            if name == "model-typo":
                sure = "error"
            TABLE.append(pytest.param(args, sure, None, id=f"hostile-{domain}-{name}-{command}"))

TOY = "{run:toy}"
NUMBERS = [  # (arguments, what the one line must say)
    (["toy", "--n", "1e10"], "--n"),
    (["toy", "--n", "1"], "--n"),
    (["toy", "--seed", str(2**64)], "--seed"),
    (["toy", "--seed", "-1"], "--seed"),
    (["toy", "--steps", "100000000000"], "--steps"),
    (["toy", "--steps", "nan"], "--steps"),
    (["toy", "--threads", "0"], "--threads"),
    (["toy", "--threads", "100000"], "--threads"),
    (["toy", "--out", "{out:t.txt}"], ".png"),
    (["sample", "--checkpoint", TOY, "--n", "1e10"], "--n"),
    (["sample", "--checkpoint", TOY, "--n", "10000000000"], "--n"),
    (["sample", "--checkpoint", TOY, "--n", "0"], "--n"),
    (["sample", "--checkpoint", TOY, "--steps", "-1"], "--steps"),
    (["sample", "--checkpoint", TOY, "--seed", str(2**64)], "--seed"),
    (["sample", "--checkpoint", TOY, "--sampler", "nope"], "unknown sampler"),
    (["sample", "--checkpoint", TOY, "--device", "tpu"], "device"),
    (["sample", "--checkpoint", TOY, "--bogus", "1"], "--bogus"),
    (["evaluate", "--checkpoint", TOY, "--steps", "0"], "--steps"),
    (["evaluate", "--checkpoint", TOY, "--num-samples", "10000000000"], "--num-samples"),
    (["evaluate", "--checkpoint", TOY, "--sampler", "nope"], "unknown sampler"),
    (["evaluate", "--checkpoint", TOY, "--seed", "-5"], "--seed"),
    (["forecast", "--checkpoint", "{run:timeseries}", "--num-samples", "0"], "--num-samples"),
    (["forecast", "--checkpoint", "{run:timeseries}", "--steps", "1e3"], "--steps"),
    (["forecast", "--checkpoint", "{run:timeseries}", "--out", "{file:dir}"], "is a folder"),
    (["forecast", "--checkpoint", "{run:timeseries}", "--out", "{out:f.xlsx}"], ".csv"),
    (["forecast", "--checkpoint", TOY], "does not forecast"),
    (["bench", "--nfe", "0", "--out", "{out:b}"], "--nfe"),
    (["bench", "--nfe", "x", "--out", "{out:b}"], "--nfe"),
    (["bench", "--suite", "nope", "--out", "{out:b}"], "unknown suite"),
    (["bench", "--samplers", "nope", "--out", "{out:b}"], "unknown sampler"),
    (["bench", "--seed", str(2**64), "--out", "{out:b}"], "--seed"),
    (["bench", "--data-dir", "{file:empty}", "--out", "{out:b}"], "is empty"),
    (["bench", "--data-dir", "{file:zero}", "--out", "{out:b}"], "not a regular file"),
    (["bench", "--domains", "nope", "--out", "{out:b}"], "unknown domain"),
    # a network too large to allocate, and a teacher run of another domain
    (
        [
            *("train", "--domain", "timeseries", "--out", "{out:r}"),
            *("--architecture", "timegrad", "--num-cells", "100000000"),
        ],
        "memory",
    ),
    (["evaluate", "--checkpoint", "{run:text}", "--teacher", TOY], "no AR text run"),
    (["evaluate", "--checkpoint", "{run:text}", "--teacher", "{file:zero}"], "checkpoint"),
]
for domain, flags in {
    "images": ["--guidance", "--class"],
    "text": ["--guidance", "--length", "--infill-span"],
}.items():
    for flag in flags:
        for value in ("nan", "inf", "-inf", "1e308", "-1e308", "10000000000000"):
            args = ["sample", "--checkpoint", f"{{run:{domain}}}", "--n", "1", "--steps", "1"]
            NUMBERS.append(([*args, "--out", OUT[domain], flag, value], flag))
TRAIN = ["train", "--domain"]
for domain, sizes in {
    "toy": ["--hidden", "--depth", "--n-train", "--time-dim"],
    "timeseries": ["--num-cells", "--step-embedding-dim", "--prediction-length", "--dropout"],
    "images": ["--base-channels", "--dropout", "--label-dropout", "--num-res-blocks"],
    "text": ["--width", "--depth", "--dropout", "--heads"],
}.items():
    for flag in sizes:
        for value in ("-4", "2", "1e308", "nan"):
            if value == "2" and "dropout" not in flag:
                value = "10000000000000"
            NUMBERS.append(([*TRAIN, domain, "--out", "{out:run}", flag, value], ""))
for flag, value in [
    ("--batch-size", "1000000000"),
    ("--max-steps", "10000000000000"),
    ("--seed", str(2**64)),
    ("--lr", "nan"),
    ("--lr", "inf"),
    ("--lr", "1e308"),
    ("--epochs", "-1"),
    ("--devices", "0"),
    ("--strategy", "mpi"),
    ("--device", "tpu"),
    ("--set", "train.seed=18446744073709551616"),
    ("--set", "train.ema_max_decay=1"),
    ("--set", "diffusion.T=0"),
    ("--set", "diffusion.schedule=nope"),
    ("--set", "nosuchsection.x=1"),
    ("--set", "=3"),
]:
    # a train flag's message names its key (train.batch_size), the way --set and TOML spell it
    key = flag[2:].replace("-", "_")
    if flag == "--set":
        key = {"diffusion.schedule": "schedule", "nosuchsection.x": "section"}.get(
            value.partition("=")[0], value.partition("=")[0]
        )
    NUMBERS.append(([*TRAIN, "toy", "--out", "{out:run}", flag, value], key or "--set"))
for args, says in NUMBERS:
    TABLE.append(pytest.param(args, "error", says or None, id=" ".join(args)[:90]))

# attempts on an existing run: each must fail and leave it byte-identical
for domain in DOMAINS:
    run = f"{{run:{domain}}}"
    for extra, says in [
        ([], "--resume"),
        (["--resume", "--set", "train.lr=-1"], "train.lr"),
        (["--resume", "--set", "nokey=1"], "nokey"),
        (["--resume", "--data", "{file:zero}"], "not a regular file"),
        (["--resume", "--config", "{file:binary}"], "TOML"),
    ]:
        args = ["train", "--domain", domain, "--out", run, *extra]
        TABLE.append(pytest.param(args, "error", says, id=f"damage-{domain}-{len(extra)}-{says}"))
TABLE.append(
    pytest.param(
        ["train", "--domain", "text", "--out", "{run:toy}", "--resume"],
        "error",
        None,
        id="resume-other-domain",
    )
)


@pytest.mark.parametrize(("args", "expect", "says"), TABLE)
def test_hand_made_case(args, expect, says, env, tmp_path):
    run_case(env, tmp_path / "box", args, expect, says)


def test_the_table_holds_enough_cases():
    assert len(TABLE) >= 300


def test_the_checks_catch_a_traceback_a_stray_write_and_a_damaged_run(tmp_path):
    root, run = tmp_path / "box", tmp_path / "run"
    args = ["sample", "--checkpoint", str(run), "--out", str(root / "s.csv")]
    fine = Outcome(0, "", "", frozenset({str(root / "s.csv")}))
    check(fine, args, root, "ok")
    bad = [
        Outcome(1, "", "Traceback (most recent call last):\n", frozenset()),
        Outcome(0, "", "", frozenset({str(root / "other.csv")})),  # outside --out
        Outcome(2, "", "error: no good.\n", frozenset({str(run / "config.json")})),
        Outcome(2, "", "error: one\nerror: two\n", frozenset()),
        Outcome(2, "", f"error: {SECRET} is bad; pass another.\n", frozenset()),
        Outcome(2, "", "error: it broke.\n", frozenset()),  # names no fix
    ]
    for outcome in bad:
        with pytest.raises(AssertionError):
            check(outcome, args, root)


def test_forecast_replaces_no_table_or_chart_without_overwrite(env, tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    (box / "f.png").write_bytes(b"a picture the user keeps")
    args = ["forecast", "--checkpoint", "{run:timeseries}", "--out", "{out:f.csv}"]
    args += ["--steps", "1", "--num-samples", "2"]
    run_case(env, box, args, "error", "pass --overwrite")
    assert (box / "f.png").read_bytes() == b"a picture the user keeps"
    assert not (box / "f.csv").exists()
    run_case(env, box, [*args, "--overwrite"], "ok")
    assert (box / "f.png").read_bytes()[:4] == b"\x89PNG" and (box / "f.csv").stat().st_size
    run_case(env, box, args, "error", "f.csv' exists")  # its own earlier table too


def test_evaluate_uses_the_data_it_is_given(env, tmp_path):
    points = tmp_path / "far.csv"
    np.savetxt(points, np.random.default_rng(0).normal(50.0, 1.0, (80, 2)), delimiter=",")
    own = run_case(env, tmp_path / "a", ["evaluate", "--checkpoint", "{run:toy}"], "ok")
    given = ["evaluate", "--checkpoint", "{run:toy}", "--data", str(points)]
    far = run_case(env, tmp_path / "b", [*given, "--out", "{out:m.json}"], "ok")
    assert "mode_tv" in own.out and "mode_tv" not in far.out  # held-out points, not the ring
    distance = float(next(s for s in far.out.splitlines() if "sliced_wasserstein" in s).split()[-1])
    assert distance > 10  # samples near the ring are about 50 away from these points


# ---- hypothesis ------------------------------------------------------------------------

# DIFFKIT_FUZZ_EXAMPLES=300 explores further (and DIFFKIT_FUZZ_RANDOM=1 with fresh seeds)
FUZZ = settings(
    max_examples=int(os.environ.get("DIFFKIT_FUZZ_EXAMPLES", "30")),
    deadline=None,
    derandomize=not os.environ.get("DIFFKIT_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
numbers = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.integers(0, 3).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["0", "-1", "1e400", "nan", "", "ten", "0x10", "1_000", "2**64"]),
)
text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)


def _csv(rows, cols, value):
    return "\n".join(",".join([value] * cols) for _ in range(rows)).encode()


def _npy(shape, dtype):
    buf = io.BytesIO()
    np.save(buf, np.ones(shape, dtype=dtype))
    return buf.getvalue()


contents = st.one_of(
    st.just(b""),
    st.binary(max_size=256),
    text.map(str.encode),
    st.builds(_csv, st.integers(0, 40), st.integers(1, 9), numbers),
    st.builds(
        _npy,
        st.sampled_from([(0,), (3,), (40, 1), (40, 2), (5, 3, 2), (4, 8, 8)]),
        st.sampled_from([np.float32, np.uint8, np.complex64, bool, np.int64]),
    ),
    st.sampled_from(
        [
            b"[train]\nlr = 'fast'\n",
            b"[model]\nhidden = -4\n",
            b"[train]\n[[x]]",
            b"x,y\n1,2\n3,a\n",
            b"[diffusion]\nT = 100000000000\n",
            b'{"start": "2020-01-01", "target": [1, 2]}\n{"start": 3}\n',
            b"date,a\n2020-01-01,1\n2020-01-01,2\n",
            b"text,mr\nhello,\n",
        ]
    ),
)
suffixes = st.sampled_from([".csv", ".npy", ".toml", ".txt", ".jsonl", ".npz", ".gz", ""])


def _box(tmp_path) -> Path:
    return Path(tempfile.mkdtemp(dir=tmp_path))


def _flat(opts) -> list[str]:
    """The generated flag/value pairs, a written path kept inside the sandbox."""
    out = []
    for flag, value in opts:
        if flag == "--out" and (value.startswith(("/", "~")) or ".." in value):
            value = "x" + value.replace("/", "_").replace("~", "_")
        out += [flag, value]
    return out


COMMON = ["--seed", "--threads", "--device", "--bogus", "--out"]
FLAGS = {
    "toy": ["--n", "--steps", "--sampler", *COMMON],
    "sample": [
        *("--n", "--steps", "--sampler", "--no-ema", "--class", "--guidance", "--length"),
        *("--cond", "--infill", "--infill-span", *COMMON),
    ],
    "evaluate": ["--data", "--steps", "--sampler", "--num-samples", "--teacher", *COMMON],
    "forecast": [
        "--data",
        "--steps",
        "--sampler",
        "--num-samples",
        "--raw",
        "--overwrite",
        *COMMON,
    ],
    "train": [
        *("--epochs", "--batch-size", "--lr", "--devices", "--strategy", "--set", "--domain"),
        *("--data", "--config", "--hidden", "--dropout", "--width", *COMMON),
    ],
}
options = st.lists(
    st.tuples(
        st.sampled_from(sorted({f for v in FLAGS.values() for f in v})), st.one_of(numbers, text)
    ),
    max_size=4,
)


@FUZZ
@given(
    command=st.sampled_from(["sample", "evaluate", "forecast"]),
    domain=st.sampled_from(DOMAINS),
    opts=options,
)
def test_checkpoint_commands_with_any_flags(command, domain, opts, env, tmp_path):
    # small valid counts keep a call that succeeds to a second
    args = [command, "--checkpoint", f"{{run:{domain}}}", "--steps", "1"]
    if command != "evaluate":
        args += ["--num-samples" if command == "forecast" else "--n", "1"]
    run_case(env, _box(tmp_path), args + _flat(opts))


@FUZZ
@given(opts=options, steps=st.sampled_from(["0", "-7", "1e3", "10000000000000", "99" * 20]))
def test_train_arguments_never_escape_as_tracebacks(opts, steps, env, tmp_path):
    # --max-steps is always invalid, so no example starts a training run
    args = ["train", "--domain", "toy", "--out", "{out:o}", "--max-steps", steps]
    run_case(env, _box(tmp_path), args + _flat(opts), "error")


@FUZZ
@given(data=contents, suffix=suffixes, domain=st.sampled_from(DOMAINS))
def test_files_given_as_config_data_or_checkpoint_never_escape(data, suffix, domain, env, tmp_path):
    box = _box(tmp_path)
    path = Path(box) / f"input{suffix}"
    path.write_bytes(data)
    run_case(env, box, ["train", "--domain", domain, "--config", str(path), "--max-steps", "0"])
    evaluate = ["evaluate", "--checkpoint", f"{{run:{domain}}}", "--data", str(path)]
    run_case(env, box, [*evaluate, "--out", "{out:m.json}"])
    run_case(env, box, ["sample", "--checkpoint", str(path), "--out", "{out:s.csv}"], "error")
    if domain == "timeseries":
        forecast = ["forecast", "--checkpoint", "{run:timeseries}", "--data", str(path)]
        run_case(
            env, box, [*forecast, "--steps", "1", "--num-samples", "1", "--out", "{out:f.csv}"]
        )


@FUZZ
@given(
    n=st.one_of(st.integers(-(10**30), 0), st.integers(1, 40), st.integers(10**8, 10**30)).map(str),
    steps=st.one_of(st.integers(-5, 0), st.integers(1, 20), st.integers(10**6, 10**30)).map(str),
    sampler=st.one_of(text, st.sampled_from(["ddim", "ddpm", "heun", "dpmpp_2m", "unipc"])),
)
def test_toy_and_sample_arguments_never_escape(n, steps, sampler, env, tmp_path):
    box = _box(tmp_path)
    run_case(
        env, box, ["toy", "--n", n, "--steps", steps, "--sampler", sampler, "--out", "{out:t.png}"]
    )
    sample = ["sample", "--checkpoint", "{run:toy}", "--n", n, "--steps", steps]
    run_case(env, box, [*sample, "--sampler", sampler, "--out", "{out:s.npy}"])


def _commands() -> dict[str, list[str]]:
    """Every command the app has (a new one, such as fit-steps, joins by itself), its flags."""
    import typer

    from diffkit.cli import app

    group = typer.main.get_command(app)
    return {
        name: sorted(
            o for p in command.params for o in p.opts if o.startswith("--") and o != "--help"
        )
        for name, command in group.commands.items()
    }


COMMANDS = _commands()


@FUZZ
@given(data=st.data(), checkpoint=st.sampled_from([None, *DOMAINS]))
def test_every_command_with_its_own_flags_and_garbage(data, checkpoint, env, tmp_path):
    name = data.draw(st.sampled_from(sorted(COMMANDS)))
    flags = st.sampled_from([*COMMANDS[name], "--bogus", "--set", "--data", "--out"])
    opts = data.draw(st.lists(st.tuples(flags, st.one_of(numbers, text)), max_size=5))
    args = [name, *_flat(opts)]
    if checkpoint is not None and "--checkpoint" in COMMANDS[name]:
        args += ["--checkpoint", f"{{run:{checkpoint}}}"]
    # --threads 0 (or, where a command has no --threads, an unknown flag) is always refused,
    # so no example trains or benchmarks for minutes; click parses every other flag first
    refused = ["--threads", "0"] if "--threads" in COMMANDS[name] else ["--no-such-flag"]
    run_case(env, _box(tmp_path), [*args, *refused], "error")
