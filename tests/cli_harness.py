"""What the CLI fuzz test runs: tiny runs of every domain, bad files, hostile run copies,
and one call of ``diffkit.cli.main`` in a sandbox with its effects on disk checked.

A case's arguments are strings with placeholders filled in at run time: ``{run:toy}`` (a
tiny trained run), ``{file:dir}`` (one of :func:`bad_files`), ``{hostile:text:zero}`` (a run
copy whose config.json was edited, see :data:`HOSTILE`), ``{out}`` (a path in the sandbox).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffkit.cli import main
from tests.tiny import SETS as TOY_SETS

SECRET = "SECRET-MARKER-7f3a"  # what a run-named file holds; no message may quote it
DOMAINS = ("toy", "timeseries", "images", "text")

# The domains' smallest settings: each run trains in a second or two.
TINY = {
    "toy": ["--max-steps", "2", *TOY_SETS],
    "timeseries": [
        "--max-steps", "2", "--num-cells", "4", "--num-layers", "1", "--cond-dim", "4",
        "--residual-layers", "1", "--residual-channels", "2", "--synthetic-length", "120",
        "--prediction-length", "4", "--num-samples", "3", "--eval-sampler", "ddim",
        "--eval-steps", "2", "--set", "diffusion.T=10", "--batch-size", "8",
        "--set", "train.warmup_steps=1", "--set", "train.accelerator=cpu",
    ],
    "images": [
        "--max-steps", "1", "--base-channels", "8", "--channel-mults", "1",
        "--num-res-blocks", "1", "--attention-levels", "", "--n-eval", "4", "--eval-steps", "2",
        "--classifier-steps", "2", "--bpd-steps", "2", "--guidance-scales", "0",
        "--class-conditional", "--batch-size", "16", "--set", "train.warmup_steps=1",
        "--set", "train.accelerator=cpu",
    ],
    "text": [
        "--max-steps", "1", "--width", "16", "--depth", "1", "--heads", "2", "--n-train", "60",
        "--cond-column", "mr", "--eval-samples", "2", "--eval-steps", "2", "--nll-texts", "2",
        "--nll-steps", "2", "--infill-texts", "1", "--batch-size", "8",
        "--set", "train.warmup_steps=1", "--set", "train.accelerator=cpu",
    ],
}  # fmt: skip


def bad_files(folder: Path) -> dict[str, Path]:
    """Files no reader may choke on: each must give one line, exit 2, never a traceback."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "missing": folder / "missing.csv",
        "dir": folder / "folder.csv",
        "null": Path("/dev/null"),
        "zero": Path("/dev/zero"),
        "fifo": folder / "pipe.csv",
        "link-zero": folder / "link.csv",
        "empty": folder / "empty.csv",
        "binary": folder / "binary.csv",
        "npy-as-csv": folder / "array.csv",
        "trunc-gz": folder / "table.csv.gz",
        "trunc-txt-gz": folder / "matrix.txt.gz",
        "complex": folder / "complex.npy",
        "bool": folder / "bool.npy",
        "string": folder / "string.npy",
        "secret": folder / "secret.csv",
        "text-as-npy": folder / "text.npy",
        "one-cell": folder / "one.csv",
    }
    files["dir"].mkdir(exist_ok=True)
    if not files["fifo"].exists():
        os.mkfifo(files["fifo"])
    if not files["link-zero"].is_symlink():
        files["link-zero"].symlink_to("/dev/zero")
    files["empty"].write_bytes(b"")
    files["binary"].write_bytes(bytes(range(256)) * 3)
    np.save(folder / "array.npy", np.ones((40, 2), np.float32))
    (folder / "array.npy").rename(files["npy-as-csv"])
    import gzip

    table = "date,a,b\n" + "".join(f"2021-01-{d:02d},{d},{d}\n" for d in range(1, 29))
    files["trunc-gz"].write_bytes(gzip.compress(table.encode())[:40])
    files["trunc-txt-gz"].write_bytes(gzip.compress(b"1,2\n" * 50)[:30])
    np.save(files["complex"], np.ones((40, 8, 8), np.complex64))
    np.save(files["bool"], np.ones((40, 8, 8), bool))
    np.save(files["string"], np.array([["a", "b"]] * 40))
    files["secret"].write_text(f"root:x:0:0:{SECRET}:/root:/bin/bash\ndaemon:x:1:1::/:{SECRET}\n")
    files["text-as-npy"].write_text(f"{SECRET}\n")
    files["one-cell"].write_text("7\n")
    return files


def _edit(path: Path, change) -> None:
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def _set_data(value: str):
    def change(c):
        c["data"] = value
        if isinstance(c.get("settings"), dict):
            c["settings"]["source"] = value

    return change


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])


# name -> (edit of each config.json, files of the checkpoint to cut in half)
HOSTILE = {
    "secret": (lambda f: _set_data(str(f["secret"])), ()),
    "secret-txt": (lambda f: _set_data(str(f["text-as-npy"])), ()),
    "zero": (lambda f: _set_data("/dev/zero"), ()),
    "fifo": (lambda f: _set_data(str(f["fifo"])), ()),
    "link-zero": (lambda f: _set_data(str(f["link-zero"])), ()),
    "missing": (lambda f: _set_data(str(f["missing"])), ()),
    "settings-list": (lambda f: lambda c: c.update(settings=[1, 2]), ()),
    "no-schedule": (lambda f: lambda c: c.pop("schedule", None), ()),
    "model-typo": (lambda f: lambda c: c["model"].update(bogus_key=1), ()),
    "format-99": (lambda f: lambda c: c.update(format_version=99), ()),
    "huge-T": (lambda f: lambda c: c["diffusion"].update(T=10**13), ()),
    "huge-shape": (lambda f: lambda c: c.get("settings", {}).update(shape=[1, 10**5, 10**5]), ()),
    "trunc-weights": (lambda f: lambda c: None, ("model.pt", "ema.pt")),
    "trunc-json": (lambda f: lambda c: None, ("config.json",)),
}


def train_tiny(domain: str, out: Path) -> Path:
    """A tiny run of ``domain`` in ``out``, trained through the CLI in this process."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(["train", "--domain", domain, "--out", str(out), "--quiet", *TINY[domain]])
        except SystemExit as e:
            assert not e.code, f"training the tiny {domain} run failed"
    return out


def hostile_run(run: Path, dest: Path, name: str, files: dict[str, Path]) -> Path:
    """A copy of ``run`` (its config and latest checkpoint) damaged as ``HOSTILE[name]`` says."""
    edit, cut = HOSTILE[name]
    latest = sorted((run / "checkpoints").glob("step-*"))[-1]
    (dest / "checkpoints").mkdir(parents=True)
    shutil.copy(run / "config.json", dest / "config.json")
    shutil.copytree(latest, dest / "checkpoints" / latest.name)
    for config in (dest / "config.json", dest / "checkpoints" / latest.name / "config.json"):
        _edit(config, edit(files))
    for file in cut:
        _truncate(dest / "checkpoints" / latest.name / file)
    return dest


def tree(root: Path) -> dict[str, str]:
    """``{relative path: sha1 of the bytes, or "dir"/"link"/"other"}`` of everything under root."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        elif path.is_file():
            out[rel] = hashlib.sha1(path.read_bytes()).hexdigest()
        else:
            out[rel] = "other"
    return out


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    changed: frozenset[str]  # absolute paths created, changed or removed


# a message names the fix: an imperative after the problem, or a "must"/range it has to meet
FIX = re.compile(
    r"; |\b(pass|use|give|choose|check|drop|fix|restore|see|remove|name|train|store|re-save|"
    r"re-download|set|add|ask|clean|keep|put|point|resample|rescale|must|needs?)\b"
)


class Sandbox:
    """Fills in placeholders and runs one command in ``root`` (the working directory)."""

    def __init__(self, root: Path, env: dict):
        self.root, self.env = root, env
        root.mkdir(parents=True, exist_ok=True)

    def fill(self, arg) -> str:
        def one(match):
            kind, _, key = match.group(1).partition(":")
            if kind == "out":
                return str(self.root / (key or "out"))
            if kind == "run":
                return str(self.env["runs"][key])
            if kind == "file":
                return str(self.env["files"][key])
            if kind == "hostile":
                return str(self.env["hostile"](*key.split(":")))
            raise KeyError(kind)

        return re.sub(r"\{((?:out|run|file|hostile)(?::[a-z0-9:.-]+)?)\}", one, str(arg))

    def watched(self, args: list[str]) -> list[Path]:
        """The sandbox and every run directory the arguments name."""
        roots = [self.root]
        for arg in args:
            for run in self.env["all_runs"]():
                if arg == str(run) or arg.startswith(str(run) + os.sep):
                    roots.append(run)
        return roots

    def run(self, args: list, timeout: int = 60) -> Outcome:
        args = [self.fill(a) for a in args]
        roots = self.watched(args)
        before = {r: tree(r) for r in roots}
        out, err = io.StringIO(), io.StringIO()

        def alarm(*_):
            raise TimeoutError(f"diffkit {' '.join(args)} ran over {timeout} s")

        previous = signal.signal(signal.SIGALRM, alarm)
        signal.alarm(timeout)
        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main(args)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            os.chdir(cwd)
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        changed = set()
        for root in roots:
            after = tree(root)
            keys = set(after) | set(before[root])
            changed |= {str(root / k) for k in keys if after.get(k) != before[root].get(k)}
        return Outcome(code, out.getvalue(), err.getvalue(), frozenset(changed))


def allowed_writes(args: list[str]) -> list[str]:
    """Where a command may write: its --out (and chart), a train run, evaluate's metrics."""

    def value(flag):
        return args[args.index(flag) + 1] if flag in args[:-1] else None

    command = args[0] if args else ""
    places = [p for p in (value("--out"),) if p]
    if command in ("forecast", "impute"):  # a table and its chart
        out = value("--out") or {"forecast": "forecasts.csv", "impute": "filled.csv"}[command]
        places += [out, str(Path(out).with_suffix(".png"))]
    if command == "sample" and not value("--out"):
        places.append("samples.csv")
    if command == "toy" and not value("--out"):
        places.append("toy.png")
    if command == "train" and not value("--out"):
        places.append(str(Path("runs") / (value("--domain") or "")))
    if command == "evaluate" and not value("--out") and value("--checkpoint"):
        places.append(str(Path(value("--checkpoint")) / "metrics.json"))
    if command == "bench":
        places.append(value("--out") or "report")
    return places


def check(
    outcome: Outcome, args: list[str], root: Path, expect: str = "any", says=None, quoted=False
):
    """The assertions every case makes (see tests/test_cli_fuzz.py).

    ``quoted``: the user named a file holding :data:`SECRET` (a file the user gives may be
    quoted back; one a run names never is).
    """
    text = outcome.out + outcome.err
    shown = f"diffkit {' '.join(args)}\n{outcome.err[-2000:]}"
    assert "Traceback" not in text, shown
    assert quoted or SECRET not in text, shown
    assert outcome.code in (0, 2), shown
    if expect == "error":
        assert outcome.code == 2, shown
    elif expect == "ok":
        assert outcome.code == 0, shown
    if outcome.code == 2:
        lines = [line for line in outcome.err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, shown
        assert FIX.search(lines[0]), f"names no fix: {lines[0]}"
        if says is not None:
            assert says in lines[0], shown
    places = [Path(p) if Path(p).is_absolute() else root / p for p in allowed_writes(args)]
    for path in outcome.changed:
        inside = any(Path(path) == p or p in Path(path).parents for p in places)
        assert inside, f"{shown}\nwrote {path} (allowed: {places})"
        if outcome.code != 0:  # a failed command leaves every run directory as it was
            assert str(root) in path, f"{shown}\na failed command changed {path}"
