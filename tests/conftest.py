from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or a clean skip when this checkout has none."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{name} not found in ../shared/data")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own rnnkit cache, so none touches the user's."""
    if "RNNKIT_TEST_REAL_HOME" not in os.environ:
        monkeypatch.setenv("RNNKIT_HOME", str(tmp_path_factory.mktemp("rnnkit-home")))


@pytest.fixture
def run_cli(capsys):
    """Run `rnnkit ARGS...` in-process: (exit status, stdout, stderr)."""
    from rnnkit.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            status = main([str(a) for a in args])
        except SystemExit as e:  # argparse's own usage errors
            status = e.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


def pytest_report_header(config) -> str:
    """Which CPU ran the suite (numeric tolerances must hold on any): model and widest vector unit."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        import platform

        return f"cpu: {platform.processor() or platform.machine()}"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    widest = next((isa for isa in ("avx512f", "avx2", "avx", "sse4_2") if isa in flags), "none of avx/sse4.2")
    return f"cpu: {model}, {os.cpu_count()} cores, widest vectors: {widest}"
