"""Shared fixtures for the gan_core tests (tests/test_core_*.py).

Everything is tiny and runs on the CPU: a 32 px DCGAN with 8-16 filters trains a step in a
few milliseconds. Training fixtures pin torch to one intra-op thread: on a busy 2-core
machine two OpenMP threads contend and a step can take seconds instead of milliseconds, and
a fixed thread count also keeps floating-point reductions identical between runs.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

import gan_core

# Property-based (fuzz) tests: a few examples per test in CI, thousands on demand with
# HYPOTHESIS_PROFILE=long (see SECURITY.md). No deadline: one example's time varies with the
# machine's load; the fuzz tests bound their own inputs' sizes instead.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

CORE_SIZE = 32
CORE_MODEL = {"ngf": 8, "ndf": 8}


@contextlib.contextmanager
def _torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def core_single_thread():
    """Run the test with one torch thread, restoring the previous count afterwards."""
    with _torch_threads(1):
        yield


@pytest.fixture(scope="session")
def core_dataset() -> gan_core.ImageDataset:
    """16 built-in Mondrian images at 32 px (procedural, no files)."""
    return gan_core.open_dataset("builtin:mondrian", CORE_SIZE, count=16, seed=0)


@pytest.fixture
def core_config():
    """Factory for a tiny, fast, CPU-only TrainConfig; keyword arguments override."""

    def make(steps: int = 4, **overrides) -> gan_core.TrainConfig:
        fields = dict(arch="dcgan", size=CORE_SIZE, steps=steps, batch=4, device="cpu",
                      preview_every=0, checkpoint_every=0, preview_count=4,
                      model=dict(CORE_MODEL))
        fields.update(overrides)
        return gan_core.TrainConfig(**fields)

    return make


@pytest.fixture(scope="session")
def core_trained(tmp_path_factory, core_dataset) -> tuple[gan_core.GANModel, Path]:
    """A model trained for a few steps and its resumable checkpoint on disk.

    Session-scoped and shared: tests must not modify the model or the file (copy first).
    """
    path = tmp_path_factory.mktemp("core_trained") / "tiny.safetensors"
    cfg = gan_core.TrainConfig(arch="dcgan", size=CORE_SIZE, steps=3, batch=4, device="cpu",
                               preview_every=0, checkpoint_every=0, preview_count=4,
                               model=dict(CORE_MODEL), seed=7)
    with _torch_threads(1):
        model = gan_core.train(cfg, core_dataset, out=path)
    return model, path


# ----------------------------------------------------------------------------- the ComfyUI pack

REPO = Path(__file__).resolve().parents[1]
FAKES = Path(__file__).resolve().parent / "comfy_fakes"


@pytest.fixture(scope="session")
def comfy():
    """The fake ComfyUI modules importable under their real names (tests/comfy_fakes)."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules)
             if k in ("folder_paths", "comfy") or k.startswith("comfy.")}
    sys.path.insert(0, str(FAKES))
    import comfy.model_management as mm
    import comfy.utils as utils
    import folder_paths as fp
    yield fp, utils, mm
    sys.path.remove(str(FAKES))
    for k in [k for k in sys.modules if k in ("folder_paths", "comfy") or k.startswith("comfy.")]:
        del sys.modules[k]
    sys.modules.update(saved)


@pytest.fixture(scope="session")
def pack(comfy, tmp_path_factory):
    """Import the checkout as ComfyUI does: by file location, under the folder's name."""
    comfy[0].configure(str(tmp_path_factory.mktemp("comfy_boot")))
    name = "gan_atelier_under_test"
    spec = importlib.util.spec_from_file_location(
        name, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    for k in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[k]


@pytest.fixture(scope="session")
def latent_models():
    """tests/latent_models.py (calibrated random DCGANs, a toy mapping/w+ generator), loaded
    once by file location: with --import-mode=importlib test files cannot import siblings."""
    name = "gan_atelier_latent_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("latent_models.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def node_env(comfy, pack, tmp_path, core_single_thread):
    """For node tests: a fresh ComfyUI tree per test and a progress hook that records each
    update and, like ComfyUI's server hook, checks for interruption on every one.
    Yields (folder_paths, model_management, the recorded (value, total, preview) calls)."""
    fp, utils, mm = comfy
    fp.configure(str(tmp_path))
    pack.nodes.bridge.register_model_folder()
    calls = []

    def hook(value, total, preview, node_id=None):
        calls.append((value, total, preview))
        mm.throw_exception_if_processing_interrupted()

    utils.set_progress_bar_global_hook(hook)
    mm.interrupt_current_processing(False)
    yield fp, mm, calls
    utils.set_progress_bar_global_hook(None)


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` need CUDA: skipped (with the reason) on a torch without it."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (this torch has none)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
