"""Memory stays bounded (issue 6), at small scale; benchmarks/memory_limits.py measures the
real sizes (8192 px, 64 x 1024 px, 4096 seeds).

Two kinds of checks:
- structural, in this process: a network sees one image at a time, tiles no larger than asked,
  generation in chunks, results written into one batch;
- peak RSS, each case in a fresh child process (ru_maxrss is a lifetime maximum), with tiny
  random-weight networks on images of a few MiB. The properties compare cases with each other
  rather than against absolute figures: the memory a call needs beyond its own result must not
  grow with the image size (tiled) or with the batch (one image at a time), up to a small slack.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gan_core
from gan_core.archs import get_arch

REPO = Path(__file__).resolve().parents[1]
MIB = 2 ** 20
STYLE = ("cyclegan_resnet", {"ngf": 4, "n_blocks": 1, "ndf": 4})
DENOISE = ("dncnn", {"in_nc": 3, "out_nc": 3, "nc": 8, "nb": 3})


def _model(arch: str, cfg: dict) -> gan_core.GANModel:
    spec = get_arch(arch)
    torch.manual_seed(0)
    config = spec.config_cls(**cfg)
    return gan_core.GANModel(arch, config, {"G": spec.build(config)["G"]})


class ShapeLog:
    """Forward pre-hook recording the shape of every input the network is called with."""

    def __init__(self, net: torch.nn.Module):
        self.shapes: list[tuple[int, ...]] = []
        self.handle = net.register_forward_pre_hook(
            lambda m, args: self.shapes.append(tuple(args[0].shape)))

    def __enter__(self) -> "ShapeLog":
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


# ------------------------------------------------------------------------------- structural

@pytest.mark.parametrize("arch,cfg", [STYLE, DENOISE], ids=["stylize", "denoise"])
def test_a_batch_runs_one_image_at_a_time_into_one_result(core_single_thread, arch, cfg):
    model = _model(arch, cfg)
    images = torch.rand(5, 24, 20, 3, generator=torch.Generator().manual_seed(0))
    run = model.stylize if model.task == "style" else model.denoise
    with ShapeLog(model.module) as log:
        out = run(images)
    assert len(log.shapes) == 5 and all(s[0] == 1 for s in log.shapes)
    # the same as one call per image: nothing is shared between the images of a batch
    alone = torch.cat([run(images[i:i + 1]) for i in range(5)])
    assert torch.equal(out, alone)


@pytest.mark.parametrize("arch,cfg", [STYLE, DENOISE], ids=["stylize", "denoise"])
def test_tiles_are_never_larger_than_asked(core_single_thread, arch, cfg):
    model = _model(arch, cfg)
    images = torch.rand(2, 150, 97, 3, generator=torch.Generator().manual_seed(1))
    run = model.stylize if model.task == "style" else model.denoise
    with ShapeLog(model.module) as log:
        out = run(images, tile=48)
    assert out.shape == images.shape
    mult = max(model.module.size_multiple, model.module.min_size)
    tiles = [s for s in log.shapes if s[-2:] != (8, 8)]
    # instance-norm statistics come from one pass over the downscaled copy (here the image
    # itself, under 512 px) per image; every other call is one tile
    stats = [s for s in tiles if max(s[-2:]) > 48 + mult]
    assert len(stats) == (2 if model.task == "style" else 0)
    assert all(s[0] == 1 for s in log.shapes)
    assert len(tiles) - len(stats) >= 2 * 4


def test_generation_runs_in_chunks_and_fills_one_batch(core_single_thread, core_trained):
    model, _ = core_trained
    with ShapeLog(model.module) as log:
        images = model.generate(list(range(10)), batch_size=4)
    assert [s[0] for s in log.shapes] == [4, 4, 2]
    assert images.shape[0] == 10
    assert torch.equal(images, model.generate(list(range(10)), batch_size=10))


def test_generate_node_chunks_and_map_images_fills_one_batch(comfy, pack, tmp_path,
                                                             core_single_thread):
    comfy[0].configure(str(tmp_path))
    spec = pack.gan_core.archs.get_arch("dcgan")
    torch.manual_seed(0)
    config = spec.config_cls(image_size=32, ngf=4, ndf=4)
    model = pack.gan_core.GANModel("dcgan", config, {"G": spec.build(config)["G"]})
    node = pack.nodes.node_classes()["GANAtelierGenerate"]()
    with ShapeLog(model.module) as log, torch.inference_mode():
        (images,) = node.execute(model, seed=5, count=70, truncation=1.0)
    assert images.shape == (70, 32, 32, 3)
    assert sorted({s[0] for s in log.shapes}) == [6, 64]  # CHUNK = 64
    assert torch.equal(images[64:], model.generate(list(range(69, 75))))
    doubled = pack.nodes.bridge.map_images(images[:3], lambda img: img * 0.5)
    assert torch.equal(doubled, images[:3] * 0.5)


# ----------------------------------------------------------------------- peak RSS (children)

CHILD = r"""
import json, resource, sys
import torch
torch.set_num_threads(1)
import gan_core
from gan_core.archs import get_arch
spec = json.loads(sys.argv[1])
arch = get_arch(spec["arch"])
torch.manual_seed(0)
config = arch.config_cls(**spec["cfg"])
model = gan_core.GANModel(spec["arch"], config, {"G": arch.build(config)["G"]})
run = model.stylize if model.task == "style" else model.denoise
images = torch.empty(spec["batch"], spec["size"], spec["size"], 3)
images.uniform_(0.0, 1.0, generator=torch.Generator().manual_seed(0))
run(images[:1, :16, :16], tile=spec["tile"])  # one-time allocations (kernels, pools) first
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with torch.inference_mode():
    out = run(images, tile=spec["tile"])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"increase": peak - before, "output": out.numel() * out.element_size()}))
"""


def _peaks(*specs: dict) -> list[dict]:
    """Run each spec in its own child process, all at once (memory figures do not depend on
    timing), and return their reports in order."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(spec)], env=env,
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for spec in specs]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def _spec(arch: str, cfg: dict, size: int, batch: int = 1, tile: int | None = None) -> dict:
    return dict(arch=arch, cfg=cfg, size=size, batch=batch, tile=tile)


@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.parametrize("arch,cfg", [STYLE, DENOISE], ids=["stylize", "denoise"])
def test_tiled_memory_beyond_the_result_does_not_grow_with_the_image(arch, cfg):
    """1024 and 2048 px in 256 px tiles: the 2048 px run needs 36 MiB more for its larger
    result and nothing more. (Before the tiled paths wrote into the result and converted
    ranges per tile, CycleGAN's extra grew from 68 to 188 MiB here.)"""
    small, large = _peaks(_spec(arch, cfg, 1024, tile=256), _spec(arch, cfg, 2048, tile=256))
    extra_small = small["increase"] - small["output"]
    extra_large = large["increase"] - large["output"]
    assert extra_large <= extra_small + 12 * MIB, (small, large)


@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.parametrize("arch,cfg", [STYLE, DENOISE], ids=["stylize", "denoise"])
def test_a_batch_needs_one_image_of_activations_plus_its_result(arch, cfg):
    """16 images of 384 px against 1: the batch adds its 15 further results (27 MiB) and
    nothing else; a list of results concatenated at the end adds them a second time (measured
    before the fix: +64 MiB for DnCNN)."""
    one, many = _peaks(_spec(arch, cfg, 384, batch=1), _spec(arch, cfg, 384, batch=16))
    further = many["output"] * 15 / 16
    assert many["increase"] - one["increase"] <= 1.15 * further + 4 * MIB, (one, many)
