"""What the Comfy Registry and ComfyUI-Manager read from the repository.

The Registry publishes `[project] dependencies` as the pack's requirements and installs them into
ComfyUI's environment, so torch there would replace a user's CUDA build; `.comfyignore` decides
what goes into the published archive, and the hostile-file tests must not be in it.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# The accelerator and OS classifiers the Registry's publishing tool accepts.
REGISTRY_ACCELERATORS = {
    "Environment :: GPU :: NVIDIA CUDA",
    "Environment :: GPU :: AMD ROCm",
    "Environment :: GPU :: Intel Arc",
    "Environment :: NPU :: Huawei Ascend",
    "Environment :: GPU :: Apple Metal",
}
REGISTRY_OS_PREFIXES = ("Microsoft", "POSIX", "MacOS", "OS Independent")


def _requirement_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower())
    return names


def test_torch_is_never_a_dependency_comfyui_installs():
    assert "torch" not in _requirement_names(PYPROJECT["project"]["dependencies"])
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert "torch" not in _requirement_names(requirements)
    # the two lists agree, so Manager and Registry installs get the same packages
    assert _requirement_names(requirements) == _requirement_names(PYPROJECT["project"]["dependencies"])
    # standalone installs still have a way to ask for torch
    assert "torch" in _requirement_names(PYPROJECT["project"]["optional-dependencies"]["torch"])


def test_registry_metadata_is_complete():
    project, comfy = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]
    assert project["license"] == {"file": "LICENSE"}
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert re.fullmatch(r">=\d+\.\d+\.\d+", comfy["requires-comfyui"])
    assert project["urls"]["Repository"]
    # the icon URL points at a file this repository ships, in a format the Registry shows
    icon = comfy["Icon"]
    assert icon.startswith("https://raw.githubusercontent.com/")
    shipped = ROOT / icon.split("/main/", 1)[1]
    assert shipped.suffix in {".svg", ".png", ".jpg", ".gif"} and shipped.is_file()
    from PIL import Image

    with Image.open(shipped) as image:
        assert image.width <= 800 and image.height <= 400
    classifiers = project["classifiers"]
    assert any(c in REGISTRY_ACCELERATORS for c in classifiers)
    for c in classifiers:
        if c.startswith("Environment ::"):
            assert c in REGISTRY_ACCELERATORS, c
        if c.startswith("Operating System :: "):
            assert c[len("Operating System :: "):].startswith(REGISTRY_OS_PREFIXES), c


def _ignored(path: str, patterns: list[str]) -> bool:
    """gitignore-style matching for the simple patterns .comfyignore uses (dir/ and globs)."""
    parts = path.split("/")
    for pattern in patterns:
        if pattern.endswith("/"):
            name = pattern.rstrip("/")
            if any(fnmatch.fnmatch(part, name) for part in parts[:-1]):
                return True
        elif "/" in pattern:
            if fnmatch.fnmatch(path, pattern.lstrip("/")):
                return True
        elif any(fnmatch.fnmatch(part, pattern) for part in parts):
            return True
    return False


def test_comfyignore_keeps_tests_out_and_the_pack_in():
    lines = (ROOT / ".comfyignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    try:
        tracked = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    published = [p for p in tracked if not _ignored(p, patterns)]
    assert published, "the archive would be empty"
    for path in published:
        assert not path.startswith(("tests/", "benchmarks/", ".ci/", ".github/")), path
    # what ComfyUI needs to load the pack is all there
    for needed in ("__init__.py", "nodes/__init__.py", "gan_core/__init__.py", "pyproject.toml", "LICENSE"):
        assert needed in published, needed
    assert any(p.startswith("web/js/") for p in published)
    assert any(p.startswith("web/docs/") for p in published)
    assert any(p.startswith("example_workflows/") and p.endswith(".json") for p in published)


def test_publish_workflow_uses_the_registry_action():
    text = (ROOT / ".github" / "workflows" / "publish.yml").read_text(encoding="utf-8")
    assert "Comfy-Org/publish-node-action@" in text
    assert "secrets.REGISTRY_ACCESS_TOKEN" in text
    assert '"pyproject.toml"' in text
