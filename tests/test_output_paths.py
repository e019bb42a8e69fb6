"""Every command checks where it will write before doing any work: one line, exit code 2."""

import os

import pytest

from diffkit.cli import main
from diffkit.errors import ConfigError
from diffkit.paths import check_new_outputs, check_output_dir, check_output_file
from tests.tiny import SETS, one_thread  # noqa: F401  (autouse)


@pytest.fixture
def places(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    yield {"folder": folder, "file": a_file, "locked": locked}
    locked.chmod(0o700)


def test_output_files_and_folders_are_checked(places):
    folder, a_file, locked = places["folder"], places["file"], places["locked"]
    with pytest.raises(ConfigError, match="is a folder; name a file"):
        check_output_file(folder)
    with pytest.raises(ConfigError, match="which is a file; choose a path in a folder"):
        check_output_file(a_file / "x.csv")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output_dir(a_file)
    with pytest.raises(ConfigError, match="file systems allow 255"):
        check_output_file(folder / ("n" * 300 + ".csv"))
    assert check_output_file(folder / "new" / "deeper" / "x.csv").name == "x.csv"
    assert check_output_dir(folder / "run") == folder / "run"
    if os.geteuid() != 0:  # root writes anywhere
        with pytest.raises(ConfigError, match="is not writable"):
            check_output_file(locked / "x.csv")


@pytest.mark.parametrize(
    ("command", "where", "message"),
    [
        (["toy", "--n", "10", "--steps", "2"], lambda p: p["folder"] / "t.png", None),
        (["toy", "--n", "10", "--steps", "2"], lambda p: p["file"] / "t.png", "which is a file"),
        (["train", "--domain", "toy", "--max-steps", "1", *SETS], lambda p: p["file"], "a file"),
    ],
)
def test_commands_refuse_bad_outputs_in_one_line(places, capsys, command, where, message):
    out = where(places)
    with pytest.raises(SystemExit) as info:
        main([*command, "--out", str(out)])
        raise SystemExit(0)
    err = capsys.readouterr().err
    if message is None:  # a writable place works
        assert info.value.code in (0, None)
        return
    assert info.value.code == 2 and message in err and err.count("\n") == 1


def test_sample_and_evaluate_check_their_outputs_before_loading(places, capsys, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(SystemExit):
        main(["train", "--domain", "toy", "--max-steps", "2", "--out", str(run), "--quiet", *SETS])
        raise SystemExit(0)
    for command in (["sample", "--n", "2"], ["evaluate"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--checkpoint", str(run), "--out", str(places["folder"])])
        err = capsys.readouterr().err
        assert info.value.code == 2 and "is a folder; name a file" in err


def test_a_table_and_its_chart_are_replaced_only_with_overwrite(places):
    table, chart = places["folder"] / "f.csv", places["folder"] / "f.png"
    check_new_outputs([table, chart], overwrite=False)  # new names are fine
    chart.write_bytes(b"kept")
    with pytest.raises(ConfigError, match=r"f.png' exists; pass --overwrite to replace it"):
        check_new_outputs([table, chart], overwrite=False)
    check_new_outputs([table, chart], overwrite=True)
    assert chart.read_bytes() == b"kept"  # checking writes nothing
