"""Queue-time checks: what can be known before a graph runs is reported when it is queued,
with the node's own words, and ComfyUI's range and option checks still apply to every other
input (a validate_inputs taking **kwargs switches them off for the whole node)."""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
import torch

if str(Path(__file__).resolve().parent) not in sys.path:  # the test helpers beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from comfy_validation import LINK, queue_errors  # noqa: E402

TRAIN = dict(arch="dcgan", builtin_dataset="blobs", resolution=32, width=8, steps=2, batch_size=4,
             learning_rate=2e-4, loss="bce", augmentation="none", r1_gamma=0.0, seed=0,
             preview_every=1, checkpoint_every=1, filename_prefix="tests/v")
DENOISE = dict(noise="gaussian:25", builtin_dataset="mondrian", resolution=32, width=8, steps=2,
               batch_size=2, adversarial_weight=0.0, learning_rate=1e-3, loss="l1", seed=0,
               preview_every=1, checkpoint_every=1, filename_prefix="tests/vd")


def classes(pack):
    return pack.nodes.node_classes()


def test_no_validate_inputs_switches_off_comfyuis_own_checks(pack):
    for node_id, cls in classes(pack).items():
        if "validate_inputs" in cls.__dict__:
            spec = inspect.getfullargspec(cls.validate_inputs)
            assert spec.varkw is None, f"{node_id}.validate_inputs takes **{spec.varkw}"


@pytest.mark.parametrize("node_id,inputs,expected", [
    ("GANAtelierTrain", dict(TRAIN, steps=0), "smaller than min of 1: steps"),
    ("GANAtelierTrain", dict(TRAIN, loss="l7"), "Value not in list: loss"),
    ("GANAtelierTrain", dict(TRAIN, arch="biggan"), "arch: 'biggan' is not one of"),
    ("GANAtelierTrain", dict(TRAIN, resolution=4), "resolution: 4 is below the minimum 8"),
    ("GANAtelierTrain", dict(TRAIN, resolution=2048), "resolution: 2048 is above the maximum"),
    ("GANAtelierTrainDenoiser", dict(DENOISE, width=0), "smaller than min of"),
    ("GANAtelierAddNoise", dict(images=LINK, recipe="gaussian:25", seed=-1), "smaller than min"),
])
def test_out_of_range_values_are_refused_at_queue_time(env_fixture, pack, node_id, inputs, expected):
    errors = queue_errors(classes(pack)[node_id], inputs)
    assert any(expected in e for e in errors), errors


@pytest.fixture
def env_fixture(node_env):
    return node_env


def test_a_valid_graph_queues(env_fixture, pack):
    assert queue_errors(classes(pack)["GANAtelierTrain"], TRAIN) == []
    assert queue_errors(classes(pack)["GANAtelierTrain"], dict(TRAIN, images=LINK)) == []
    assert queue_errors(classes(pack)["GANAtelierTrainDenoiser"], DENOISE) == []


def test_knowable_errors_come_at_queue_time_in_the_nodes_words(env_fixture, pack):
    fp, _, _ = env_fixture
    train = classes(pack)["GANAtelierTrain"]
    # an arch / resolution pair the family cannot build
    (err,) = queue_errors(train, dict(TRAIN, arch="fastgan", resolution=96))
    assert "resolution 96" in err and "fastgan" in err
    # a folder that is not there
    (err,) = queue_errors(train, dict(TRAIN, folder="no_such_folder"))
    assert "folder: 'no_such_folder' does not exist in ComfyUI's input directory" in err
    # a resume file of another trainer: train a denoiser, then offer it to Train GAN
    cls = classes(pack)["GANAtelierTrainDenoiser"]
    with torch.inference_mode():
        cls().EXECUTE_NORMALIZED(**DENOISE)
    names = pack.nodes.bridge.model_names()
    denoiser = next(n for n in names if n.startswith("tests/vd"))
    train = classes(pack)["GANAtelierTrain"]  # the resume list is read again
    (err,) = queue_errors(train, dict(TRAIN, resume=denoiser))
    assert "continue this one with Train Denoiser" in err
    # a resume name that is not in models/gan
    (err,) = queue_errors(train, dict(TRAIN, resume="gone.safetensors"))
    assert "resume: 'gone.safetensors' is not one of" in err


def test_a_missing_model_file_says_where_it_goes(env_fixture, pack):
    load = classes(pack)["GANAtelierLoadModel"]
    (err,) = queue_errors(load, {"model_name": "stylegan3-t-metfaces-1024x1024.pkl"})
    assert "is not in" in err and "models" in err and "NVIDIA network pickle" in err
    assert "refresh the page" in err
