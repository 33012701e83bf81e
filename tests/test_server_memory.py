"""GAN Atelier's models are released when ComfyUI releases memory (issue 6), with the fakes of
tests/comfy_fakes; benchmarks/server_load.py checks the same in a real ComfyUI server.

How ComfyUI (0.3.64) releases memory: POST /free {"unload_models": true, "free_memory": true}
makes its prompt worker call comfy.model_management.unload_all_models() (models registered with
model_management) and PromptExecutor.reset() (drops every cached node output), then gc.collect()
and soft_empty_cache(). Before loading a large model it calls model_management.free_memory(bytes,
device). A GAN_MODEL is an ordinary node output: nothing else may hold it (no private cache in
the Load node), and it may sit on the GPU only while a node runs (bridge.lend_device), since
model_management cannot evict what it does not know.
"""
from __future__ import annotations

import gc
import weakref

import pytest
import torch


@pytest.fixture
def env(comfy, pack, tmp_path, core_single_thread):
    fp, utils, mm = comfy
    fp.configure(str(tmp_path))
    pack.nodes.bridge.register_model_folder()
    mm.free_memory_calls.clear()
    yield pack, fp, mm
    mm.free_memory_calls.clear()


def _style_model(pack, cls=None):
    spec = pack.gan_core.archs.get_arch("cyclegan_resnet")
    torch.manual_seed(0)
    config = spec.config_cls(ngf=4, n_blocks=1, ndf=4)
    return (cls or pack.gan_core.GANModel)("cyclegan_resnet", config, {"G": spec.build(config)["G"]})


def _run(pack, node_id, **inputs):
    obj = pack.nodes.node_classes()[node_id]()
    with torch.inference_mode():
        return getattr(obj, obj.FUNCTION)(**inputs)


def test_a_loaded_model_is_freed_once_comfyui_drops_the_output(env, tmp_path):
    """The Load node keeps nothing: two loads are two models, and when the last reference
    (ComfyUI's output cache) goes, the network is garbage."""
    pack, fp, _ = env
    gan_dir = tmp_path / "models" / "gan"
    gan_dir.mkdir(parents=True, exist_ok=True)
    pack.gan_core.save(_style_model(pack), gan_dir / "style.safetensors")
    model, _info = _run(pack, "GANAtelierLoadModel", model_name="style.safetensors")
    again, _ = _run(pack, "GANAtelierLoadModel", model_name="style.safetensors")
    assert model is not again and model.module is not again.module
    (styled,) = _run(pack, "GANAtelierStyleTransfer", model=model, images=torch.rand(1, 8, 8, 3),
                     strength=1.0, tile=0)
    assert styled.shape == (1, 8, 8, 3)
    gone = weakref.ref(model.module)
    del model, again, _info, _
    gc.collect()
    assert gone() is None


def _recording(pack):
    """A GANModel class that records device moves instead of making them (there is no GPU
    here): its device is what it was last moved to; the computation stays on the CPU."""
    base = pack.gan_core.GANModel

    class Recording(base):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.moves: list[str] = []
            self._where = torch.device("cpu")

        def to(self, device):
            self.moves.append(str(device))
            self._where = torch.device(device)
            return self

        @property
        def device(self):
            return self._where

    return Recording


@pytest.mark.parametrize("node_id,extra", [("GANAtelierStyleTransfer", {}),
                                           ("GANAtelierDenoise", {"sigma": 15.0})])
def test_nodes_borrow_the_gpu_and_give_it_back(env, monkeypatch, node_id, extra):
    pack, _, mm = env
    monkeypatch.setattr(mm, "get_torch_device", lambda: torch.device("cuda", 0))
    if node_id == "GANAtelierDenoise":
        spec = pack.gan_core.archs.get_arch("dncnn")
        config = spec.config_cls(in_nc=3, out_nc=3, nc=4, nb=3)
        model = _recording(pack)("dncnn", config, {"G": spec.build(config)["G"]})
    else:
        model = _style_model(pack, _recording(pack))
    weights = sum(t.numel() * t.element_size() for t in model.module.state_dict().values())
    calls_before = mm.empty_cache_calls
    (out,) = _run(pack, node_id, model=model, images=torch.rand(2, 8, 8, 3), strength=1.0,
                  tile=0, **extra)
    assert out.shape == (2, 8, 8, 3)
    # ComfyUI was asked to make room for the weights on its device, then the model went
    # there for the node's work and came back to the CPU, and the cache was trimmed
    assert mm.free_memory_calls == [(weights, torch.device("cuda", 0))]
    assert model.moves == ["cuda:0", "cpu"] and model.device == torch.device("cpu")
    assert mm.empty_cache_calls > calls_before
    # also when the node fails half-way (a NaN image)
    bad = torch.rand(2, 8, 8, 3)
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        _run(pack, node_id, model=model, images=bad, strength=1.0, tile=0, **extra)
    assert model.moves[-2:] == ["cuda:0", "cpu"]


def test_on_the_cpu_nothing_moves_and_nothing_is_unloaded(env):
    pack, _, mm = env
    model = _style_model(pack, _recording(pack))
    _run(pack, "GANAtelierStyleTransfer", model=model, images=torch.rand(1, 8, 8, 3),
         strength=1.0, tile=0)
    assert model.moves == [] and mm.free_memory_calls == []


def test_training_asks_comfyui_for_the_gpu_first_and_leaves_it_free(env, monkeypatch):
    """A diffusion model kept on the GPU by an earlier prompt: before a trainer starts,
    ComfyUI's model management is asked to unload everything it can (1e20 bytes, as core's
    training node asks), and the trained model ends on the CPU, so the next diffusion node
    has the GPU memory back."""
    pack, _, mm = env
    monkeypatch.setattr(mm, "get_torch_device", lambda: torch.device("cuda", 0))
    events = []
    monkeypatch.setattr(mm, "free_memory",
                        lambda need, device, keep_loaded=[]: events.append(("free", need, device)))
    Recording = _recording(pack)

    def train(out, callbacks):
        events.append(("train", out))
        model = _style_model(pack, Recording)
        model.to("cuda:0")  # where the trainer put it
        return model

    model, preview = pack.nodes.training_common.run_training(train, "tests/mem", steps=1)
    assert events[0] == ("free", 1e20, torch.device("cuda", 0))
    assert events[1][0] == "train" and len(events) == 2
    assert model.moves == ["cuda:0", "cpu"] and model.device == torch.device("cpu")
    assert preview is None


def test_training_on_the_cpu_unloads_nothing(env):
    pack, _, mm = env
    model, _, _ = _run(pack, "GANAtelierTrain", arch="dcgan", builtin_dataset="blobs",
                       resolution=32, width=8, steps=1, batch_size=2, learning_rate=2e-4,
                       loss="bce", augmentation="none", r1_gamma=0.0, seed=0, preview_every=1,
                       checkpoint_every=1, filename_prefix="tests/cpu_mem")
    assert mm.free_memory_calls == [] and model.device == torch.device("cpu")
