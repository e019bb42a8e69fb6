"""The shared reader guard: regular files of bounded size only, one sentence per problem."""

import gzip
import os

import pandas as pd
import pytest

from diffkit.errors import CheckpointError, DataError, MissingFileError
from diffkit.reading import check_input, check_run_path, from_run, read_bytes, reading


@pytest.fixture
def places(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("absent.csv", MissingFileError, "does not exist; check the path"),
        ("folder", DataError, "is a folder; pass a file inside it"),
        ("empty.csv", DataError, "is empty; pass a file with data in it"),
        ("pipe.csv", DataError, "is not a regular file (a device, pipe or socket)"),
        ("zero.csv", DataError, "is not a regular file"),
    ],
)
def test_each_kind_of_path_that_is_no_data_file_is_named(places, name, error, message):
    with pytest.raises(error) as info:
        check_input(places / name, "--data")
    assert message in str(info.value) and str(info.value).startswith("--data '")


def test_devices_are_refused_and_folders_only_where_asked(places):
    for device in ("/dev/zero", "/dev/null"):
        with pytest.raises(DataError, match="not a regular file"):
            check_input(device)
    assert check_input(places / "folder", folder=True) == places / "folder"
    assert read_bytes(places / "data.csv") == b"a,b\n1,2\n"


def test_a_file_over_the_limit_is_refused_before_it_is_read(places, monkeypatch):
    monkeypatch.setenv("DIFFKIT_MAX_INPUT_BYTES", "4")
    with pytest.raises(DataError, match="holds 8 bytes, more than the 4 diffkit reads"):
        check_input(places / "data.csv")


def test_a_parser_failure_names_its_type_never_the_file_content(tmp_path):
    cut = tmp_path / "t.csv.gz"
    cut.write_bytes(gzip.compress(b"date,a\n" + b"2020-01-01,1\n" * 200)[:30])
    expected = r"\(EOFError\); it is truncated or corrupt"
    with pytest.raises(DataError, match=expected), reading(cut, "--data", "a CSV table"):
        pd.read_csv(cut)
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe SECRET \x00" * 20)
    with pytest.raises(DataError) as info, reading(binary, "--data", "a CSV", "pass a CSV"):
        pd.read_csv(binary)
    assert "SECRET" not in str(info.value) and str(info.value).endswith("; pass a CSV.")


def test_paths_a_run_names_are_checked_and_their_content_kept_out(places):
    where = "'run/config.json'"
    assert check_run_path("ring", where) == "ring"  # a built-in data set
    assert check_run_path(str(places / "gone.csv"), where)  # said when it is read
    with pytest.raises(CheckpointError, match=r"run/config\.json.*not a regular file"):
        check_run_path("/dev/zero", where)
    secret = str(places / "data.csv")
    with pytest.raises(CheckpointError) as info, from_run(secret, where):
        check_input(secret)
        raise DataError("column 'SECRET:x:0:0' is not numeric")
    assert "SECRET" not in str(info.value) and "pass --data FILE" in str(info.value)
    # a file the user names may be quoted
    with pytest.raises(DataError, match="SECRET"), from_run(None, where):
        raise DataError("column 'SECRET:x:0:0' is not numeric")
    # an error about another file read meanwhile (an --inpaint image) keeps its message
    with pytest.raises(DataError, match="the image"), from_run(secret, where):
        check_input(secret)
        check_input(places / "folder", folder=True)
        raise DataError("the image is corrupt; replace it.")
    gone = str(places / "gone.csv")
    with (
        pytest.raises(MissingFileError, match=r"gone\.csv', which does not"),
        from_run(gone, where),
    ):
        check_input(gone)
