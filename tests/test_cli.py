import subprocess
import sys

from typer.testing import CliRunner

from diffkit.cli import app

runner = CliRunner()


def test_info_lists_versions_and_devices():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0
    for key in ("diffkit", "torch", "lightning", "gluonts", "threads", "cuda"):
        assert key in result.output


def test_toy_saves_a_plot_and_reports_the_distance(tmp_path):
    out = tmp_path / "ring.png"
    result = runner.invoke(app, ["toy", "--out", str(out), "--steps", "10", "--n", "500"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "sliced Wasserstein-1" in result.output


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "diffkit.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_user_errors_print_one_line_and_exit_2():
    for args, message in [
        (["toy", "--sampler", "nope"], "unknown sampler 'nope'"),
        (["toy", "--steps", "-3"], "positive whole number"),
        (["toy", "--out", "ring.txt"], ".png"),
    ]:
        result = cli(*args)
        assert result.returncode == 2
        assert result.stderr.strip().startswith("error:") and message in result.stderr
        assert "Traceback" not in result.stderr
    result = cli("toy", "--no-such-option")
    assert result.returncode == 2 and "Traceback" not in result.stderr
