"""FastGAN: the network against the public key/shape lists, the public checkpoint loader
against an independent functional reading of the file, noise modes, errors, save/load."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import gan_core
from gan_core.archs.fastgan.public import export_public, parameter_keys
from gan_core.model import GANModel
from gan_core.archs.fastgan.network import (FastGANConfig, FastGANDiscriminator, FastGANGenerator,
                                     build_fastgan, public_key)

pytestmark = pytest.mark.usefixtures("core_single_thread")

REPO_PUBLIC = Path(__file__).parent / "data" / "public_key_shapes_fastgan.json"
TINY = dict(latent_dim=8, ngf=4, ndf=4)


def _public_entries() -> dict:
    data = json.loads(REPO_PUBLIC.read_text())  # shipped with the tests: no machine's path
    return {k: v for k, v in data.items() if k.startswith("FastGAN")}


# --------------------------------------------------------------------------- keys and shapes

@pytest.mark.parametrize("entry,size,role", [
    ("FastGAN G 256 (train.py defaults ngf=64 nz=256)", 256, "G"),
    ("FastGAN G 512", 512, "G"),
    ("FastGAN G 1024", 1024, "G"),
    ("FastGAN D 256", 256, "D"),
    ("FastGAN D 1024", 1024, "D"),
])
def test_keys_shapes_and_order_equal_the_public_networks(entry, size, role):
    ref = _public_entries()[entry]
    cfg = FastGANConfig(image_size=size)  # ngf 64, ndf 64, nz 256, 3 channels: train.py's
    with torch.device("meta"):  # shapes only, nothing allocated
        net = FastGANGenerator(cfg) if role == "G" else FastGANDiscriminator(cfg)
    ours = {public_key(k): list(v.shape) for k, v in net.state_dict().items()}
    assert list(ours) == list(ref["keys"])  # same names in the same (state_dict) order
    assert ours == ref["keys"]
    assert sum(p.numel() for p in net.parameters()) == ref["n_params"]


def test_spectral_norm_is_torchs():
    """Our spectral_norm is torch.nn.utils.parametrizations.spectral_norm on real tensors (same
    keys, same u/v start for the same RNG, same weights in train and eval), and builds on the
    meta device without computing anything."""
    from torch.nn.utils.parametrizations import spectral_norm as torch_sn

    from gan_core.archs.fastgan.network import spectral_norm
    for make in (lambda: torch.nn.Conv2d(6, 4, 3, bias=False),
                 lambda: torch.nn.ConvTranspose2d(5, 8, 4, bias=False)):
        torch.manual_seed(0)
        ours = spectral_norm(make())
        torch.manual_seed(0)
        ref = torch_sn(make())
        assert ours.state_dict().keys() == ref.state_dict().keys()
        for k, v in ref.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[k], v, rtol=0, atol=0)
        for mode in (True, False, True):
            ours.train(mode), ref.train(mode)
            torch.testing.assert_close(ours.weight, ref.weight, rtol=0, atol=0)
    with torch.device("meta"):
        net = FastGANGenerator(FastGANConfig())
    assert all(t.is_meta for t in net.state_dict().values())


# --------------------------------------------------------------------------- public files

def _random_public_state(net: torch.nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random weights in the original's layout. u, v are a stored pair that is not the top
    singular pair (v random, u = W v normalised): eval must use them as stored."""
    state = {public_key(k): v.clone() for k, v in net.state_dict().items()}
    for k, v in state.items():
        if k.endswith(("weight_u", "weight_v", "num_batches_tracked")):
            continue
        if k.endswith("running_var"):
            state[k] = torch.rand(v.shape, generator=gen) + 0.5
        elif k.endswith(".weight") and v.shape == (1,):  # noise strength
            state[k] = torch.rand(v.shape, generator=gen) * 0.5 + 0.1
        else:
            state[k] = torch.randn(v.shape, generator=gen) * (0.3 if v.dim() == 1 else 1.0)
    for k in [k for k in state if k.endswith(".weight_orig")]:
        base = k[: -len(".weight_orig")]
        w = state[k]
        mat = (w.transpose(0, 1) if base == "init.init.0" else w).flatten(1)
        v = F.normalize(torch.randn(mat.shape[1], generator=gen), dim=0)
        state[base + ".weight_v"] = v
        state[base + ".weight_u"] = F.normalize(mat @ v, dim=0)
    return state


class Reference:
    """FastGAN's generator written out with torch.nn.functional straight from a public
    state_dict: sigma = u . (W v) from the stored vectors, eval BatchNorm (or batch
    statistics), the protocol's fixed noise (one CPU generator seeded 0, [1,1,H,W] per
    injection in forward order)."""

    def __init__(self, state: dict[str, torch.Tensor], size: int, batch_stats: bool = False):
        self.s, self.size, self.batch_stats = state, size, batch_stats
        self.noise_gen = torch.Generator().manual_seed(0)

    def w(self, name: str) -> torch.Tensor:
        w, u, v = (self.s[f"{name}.weight_{x}"] for x in ("orig", "u", "v"))
        mat = (w.transpose(0, 1) if name == "init.init.0" else w).reshape(u.numel(), -1)
        return w / torch.dot(u, mat @ v)

    def bn(self, x, name):
        s = self.s
        if self.batch_stats:
            return F.batch_norm(x, None, None, s[f"{name}.weight"], s[f"{name}.bias"], True, 0.0,
                                1e-5)
        return F.batch_norm(x, s[f"{name}.running_mean"], s[f"{name}.running_var"],
                            s[f"{name}.weight"], s[f"{name}.bias"], False, 0.0, 1e-5)

    @staticmethod
    def glu(x):
        half = x.shape[1] // 2
        return x[:, :half] * torch.sigmoid(x[:, half:])

    def noise(self, x, name):
        n = torch.randn(1, 1, x.shape[2], x.shape[3], generator=self.noise_gen)
        return x + self.s[f"{name}.weight"] * n

    def conv(self, x, name, pad):
        return F.conv2d(x, self.w(name), padding=pad)

    def up(self, x, name):
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.glu(self.bn(self.conv(x, f"{name}.1", 1), f"{name}.2"))

    def up_comp(self, x, name):
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.glu(self.bn(self.noise(self.conv(x, f"{name}.1", 1), f"{name}.2"), f"{name}.3"))
        return self.glu(self.bn(self.noise(self.conv(x, f"{name}.5", 1), f"{name}.6"), f"{name}.7"))

    def excite(self, small, big, name):
        g = self.conv(F.adaptive_avg_pool2d(small, 4), f"{name}.main.1", 0)
        g = self.conv(g * torch.sigmoid(g), f"{name}.main.3", 0)
        return big * torch.sigmoid(g)

    def __call__(self, z: torch.Tensor) -> list[torch.Tensor]:
        x = F.conv_transpose2d(z[:, :, None, None], self.w("init.init.0"))
        f4 = self.glu(self.bn(x, "init.init.1"))
        f8 = self.up_comp(f4, "feat_8")
        f16 = self.up(f8, "feat_16")
        f32 = self.up_comp(f16, "feat_32")
        f64 = self.excite(f4, self.up(f32, "feat_64"), "se_64")
        f128 = self.excite(f8, self.up_comp(f64, "feat_128"), "se_128")
        last = self.excite(f16, self.up(f128, "feat_256"), "se_256")
        if self.size > 256:
            last = self.excite(f32, self.up_comp(last, "feat_512"), "se_512")
        if self.size > 512:
            last = self.up(last, "feat_1024")
        big, small = self.conv(last, "to_big", 1), self.conv(f128, "to_128", 0)
        if self.size == 1024:
            big, small = torch.tanh(big), torch.tanh(small)
        return [big, small]


def _public_file(tmp_path, size=256, seed=0, name="5000.pth", ngf=4, with_d=True):
    cfg = FastGANConfig(image_size=size, latent_dim=8, ngf=ngf, ndf=8 if size == 1024 else 4)
    nets = build_fastgan(cfg)
    gen = torch.Generator().manual_seed(seed)
    g = _random_public_state(nets["G"], gen)
    obj = {"g": {f"module.{k}": v for k, v in g.items()}}
    d = None
    if with_d:
        d = _random_public_state(nets["D"], gen)
        obj["d"] = {f"module.{k}": v for k, v in d.items()}
    path = tmp_path / name
    torch.save(obj, path)
    return path, g, d, cfg


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> None:
    scale = max(1.0, b.abs().max().item())
    torch.testing.assert_close(a, b, rtol=tol, atol=tol * scale)


@pytest.mark.slow
@pytest.mark.parametrize("size,ngf", [(256, 4), (1024, 8)])
def test_loaded_file_computes_what_an_independent_reading_computes(tmp_path, size, ngf):
    path, g, _, cfg = _public_file(tmp_path, size=size, ngf=ngf)
    model = gan_core.load(path)
    assert model.arch == "fastgan" and model.task == "generate"
    assert model.config == cfg
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        image = model.module.synthesize(z, noise="fixed")
        big, small = model.module(z, noise="fixed")
        ref_big, ref_small = Reference(g, size)(z)
    assert image.shape == (2, 3, size, size) and small.shape == (2, 3, 128, 128)
    _close(image, ref_big)
    _close(big, ref_big)
    _close(small, ref_small)
    if size == 1024:
        assert big.abs().max() <= 1.0  # tanh at 1024 only
    else:
        assert not torch.allclose(big, torch.tanh(big), atol=1e-3)  # raw at 256/512


def test_eval_py_batch_statistics_mode(tmp_path):
    path, g, _, _ = _public_file(tmp_path)
    net = gan_core.load(path).module
    before = {k: v.clone() for k, v in net.state_dict().items()}
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        img = net.synthesize(z, batch_stats=True)
        _close(img, Reference(g, 256, batch_stats=True)(z)[0])
        net.bn_batch_stats = True
        _close(net(z, noise="fixed")[0], img)
        net.bn_batch_stats = False
        assert not torch.allclose(net.synthesize(z), img, atol=1e-3)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # sampling changed nothing


def test_noise_modes(tmp_path):
    path, *_ = _public_file(tmp_path)
    net = gan_core.load(path).module
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        fixed = net.synthesize(z)
        # fixed: an image depends on its own latent only, not on the batch
        _close(net.synthesize(z[1:2]), fixed[1:2], 1e-6)
        _close(net.synthesize(z), fixed, 0.0)
        r1 = net.synthesize(z, noise="random", generator=torch.Generator().manual_seed(5))
        r2 = net.synthesize(z, noise="random", generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(r1, r2, rtol=0, atol=0)
        assert not torch.allclose(r1, fixed, atol=1e-3)
        none = net.synthesize(z, noise="none")
        assert not torch.allclose(none, fixed, atol=1e-3)
        # the original's call: fresh noise on the global RNG every time
        a, b = net(z)[0], net(z)[0]
        assert not torch.allclose(a, b, atol=1e-3)
    assert net.map_z(z) is z and net.z_dim == net.w_dim == 8 and net.n_latent == 1
    _close(net.synthesize(z[:, None, :]), fixed, 0.0)
    with pytest.raises(ValueError, match="noise"):
        net.synthesize(z, noise="loud")
    with pytest.raises(ValueError, match=r"\[B, 8\]"):
        net.synthesize(torch.randn(2, 9))


def test_all_file_with_g_ema_list(tmp_path):
    path, g, d, cfg = _public_file(tmp_path, name="all_5000.pth")
    nets = build_fastgan(cfg)
    obj = torch.load(path, weights_only=True)
    ema_list = [t + 0.01 * torch.randn(t.shape, generator=torch.Generator().manual_seed(i))
                for i, t in enumerate(g[k] for k in parameter_keys(nets["G"]))]
    opt_g = torch.optim.Adam(nets["G"].parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(nets["D"].parameters(), lr=2e-4, betas=(0.5, 0.999))
    for opt, net in ((opt_g, nets["G"]), (opt_d, nets["D"])):  # give the optimisers state
        for p in net.parameters():
            p.grad = torch.ones_like(p)
        opt.step()
    obj.update(g_ema=ema_list, opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict())
    torch.save(obj, path)

    model = gan_core.load(path)
    assert set(model.modules) == {"G", "D", "G_ema"} and model.module is model.modules["G_ema"]
    ema_state = model.modules["G_ema"].state_dict()
    g_state = model.modules["G"].state_dict()
    for key, tensor in zip(parameter_keys(model.modules["G"]), ema_list):
        native = next(k for k in ema_state if public_key(k) == key)
        assert torch.equal(ema_state[native], tensor)
        assert not torch.equal(g_state[native], tensor)
    buffers = [k for k in g_state if k.endswith(("_u", "_v", "running_mean", "running_var"))]
    assert buffers and all(torch.equal(ema_state[k], g_state[k]) for k in buffers)
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert not torch.allclose(model.modules["G"].synthesize(z), model.module.synthesize(z))

    obj["g_ema"] = ema_list[:-1]
    torch.save(obj, path)
    with pytest.raises(gan_core.CheckpointError, match=r"'g_ema' holds \d+ tensors"):
        gan_core.load(path)
    obj["g_ema"] = [ema_list[1]] + ema_list[1:]
    torch.save(obj, path)
    with pytest.raises(gan_core.CheckpointError, match="init.init.0.weight_orig"):
        gan_core.load(path)


def test_bare_generator_state_dict_with_and_without_prefix(tmp_path):
    path, g, _, cfg = _public_file(tmp_path, with_d=False)
    z = torch.randn(2, 8)
    for name, state in (("plain.pth", g), ("dp.pth", {f"module.{k}": v for k, v in g.items()})):
        torch.save(state, tmp_path / name)
        model = gan_core.load(tmp_path / name)
        assert set(model.modules) == {"G"} and model.discriminator is None
        with torch.no_grad():
            _close(model.module.synthesize(z), Reference(g, 256)(z)[0])


def test_export_public_round_trip_and_discriminator(tmp_path):
    path, g, d, _ = _public_file(tmp_path)
    model = gan_core.load(path)
    out = export_public(model)
    assert out["g"].keys() == {f"module.{k}" for k in g}
    assert all(torch.equal(out["g"][f"module.{k}"], v) for k, v in g.items())
    assert all(torch.equal(out["d"][f"module.{k}"], v) for k, v in d.items())
    D = model.discriminator
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        logits = D(x, "fake")
        same = D([x, F.interpolate(x, size=128)], "fake")
        real_logits, recs = D(x, "real", part=2)
    assert logits.shape == (2 * 25 * 2,)
    torch.testing.assert_close(logits, same)
    torch.testing.assert_close(real_logits, logits)
    assert [r.shape for r in recs] == [(2, 3, 128, 128)] * 3
    with pytest.raises(ValueError, match="part"):
        D(x, "real")


def test_save_load_round_trip_reproduces_outputs(tmp_path):
    path, *_ = _public_file(tmp_path)
    model = gan_core.load(path)
    out = gan_core.save(model, tmp_path / "ours.safetensors")
    back = gan_core.load(out)
    assert back.arch == "fastgan" and back.config == model.config
    for role in ("G", "D"):
        a, b = model.modules[role].state_dict(), back.modules[role].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    z = torch.randn(2, 8)
    x = torch.rand(2, 3, 256, 256)
    # Equal weights; outputs agree to float rounding (oneDNN may pick other kernels for
    # tensors at other addresses, e.g. memory-mapped safetensors).
    with torch.no_grad():
        _close(back.module.synthesize(z), model.module.synthesize(z), 1e-6)
        a, ra = model.discriminator(x, "real", part=1)
        b, rb = back.discriminator(x, "real", part=1)
    _close(a, b, 1e-6)
    _close(ra[2], rb[2], 1e-6)


# --------------------------------------------------------------------------- refusals

def test_mis_shaped_and_missing_keys_are_named(tmp_path):
    path, g, d, _ = _public_file(tmp_path)
    obj = torch.load(path, weights_only=True)
    bad = dict(obj, g=dict(obj["g"]))
    bad["g"]["module.feat_16.1.weight_orig"] = torch.zeros(8, 8, 3, 3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(gan_core.CheckpointError, match=r"mis-shaped.*feat_16\.1\.weight_orig"):
        gan_core.load(tmp_path / "bad.pth")
    gone = dict(obj, d=dict(obj["d"]))
    del gone["d"]["module.rf_small.weight_u"]
    torch.save(gone, tmp_path / "gone.pth")
    with pytest.raises(gan_core.CheckpointError, match=r"missing keys.*rf_small\.weight_u"):
        gan_core.load(tmp_path / "gone.pth")
    torch.save(obj["d"], tmp_path / "d_only.pth")
    with pytest.raises(gan_core.CheckpointError, match="discriminator only"):
        gan_core.load(tmp_path / "d_only.pth")


def test_unknown_file_is_refused(tmp_path):
    torch.save({"g": {"conv.weight": torch.zeros(3, 3, 3, 3)}}, tmp_path / "x.pth")
    with pytest.raises(gan_core.CheckpointError, match="not a GAN Atelier model"):
        gan_core.load(tmp_path / "x.pth")


def test_config_validation():
    with pytest.raises(ValueError, match="#18"):
        FastGANConfig(image_size=128)
    with pytest.raises(ValueError, match="ngf must be at least 8"):
        FastGANConfig(image_size=1024, ngf=4)
    with pytest.raises(ValueError, match="ndf must be at least 4"):
        FastGANConfig(ndf=2)


def test_loading_leaves_the_global_rng_alone(tmp_path):
    path, *_ = _public_file(tmp_path)
    torch.manual_seed(11)
    state = torch.get_rng_state()
    model = gan_core.load(path)
    assert isinstance(model, GANModel)
    assert torch.equal(torch.get_rng_state(), state)


# --------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def fastgan_data() -> gan_core.ImageDataset:
    return gan_core.open_dataset("builtin:mondrian", 256, count=4, seed=0)


def _train_config(steps: int, **overrides) -> gan_core.TrainConfig:
    fields = dict(arch="fastgan", size=256, steps=steps, batch=2, device="cpu", preview_every=0,
                  checkpoint_every=0, preview_count=2, augment="color,translation", seed=3,
                  model=dict(TINY))
    fields.update(overrides)
    return gan_core.TrainConfig(**fields)


@pytest.mark.slow
def test_training_steps_are_finite_and_learn(fastgan_data):
    torch.manual_seed(5)
    rng = torch.get_rng_state()
    seen = []
    callbacks = gan_core.TrainCallbacks(on_step=lambda step, losses: seen.append(losses),
                                        on_preview=lambda step, grid: seen.append(grid))
    model = gan_core.train(_train_config(2), fastgan_data, callbacks=callbacks)
    assert torch.equal(torch.get_rng_state(), rng)  # noise, parts, targets: all from the seed
    hist = model.resume.history
    assert set(hist) == {"loss_d", "loss_g", "recon"}
    assert all(len(v) == 2 and all(math.isfinite(x) for x in v) for v in hist.values())
    assert hist["recon"][0] > 0 and hist["loss_d"][0] > 0
    assert set(seen[0]) == {"loss_d", "loss_g", "recon"}
    assert seen[-1].shape[-1] == 3  # the closing preview grid (IMAGE)
    fresh = build_fastgan(model.config)
    trained = model.modules["G"].state_dict()
    noise_w = [k for k in trained if k.endswith(".2.weight") and trained[k].shape == (1,)]
    assert noise_w and any(trained[k].abs().item() > 0 for k in noise_w)  # noise strengths moved
    assert not torch.equal(trained["to_big.parametrizations.weight.original"],
                           fresh["G"].state_dict()["to_big.parametrizations.weight.original"])
    images = model.generate("0-1")
    assert images.shape == (2, 256, 256, 3) and torch.isfinite(images).all()
    # the summary names the objective FastGAN trains with, not TrainConfig.loss ("bce")
    assert model.training["loss"].startswith("fastgan") and model.info()["training"]["loss"]


@pytest.mark.slow
def test_resume_reproduces_the_uninterrupted_run(fastgan_data, tmp_path):
    straight = gan_core.train(_train_config(3), fastgan_data)
    path = tmp_path / "half.safetensors"
    gan_core.train(_train_config(2), fastgan_data, out=path)
    loaded = gan_core.load(path)
    assert loaded.arch == "fastgan" and loaded.resume.step == 2
    resumed = gan_core.train(_train_config(3), fastgan_data, out=path, resume=loaded)
    assert resumed.resume.history == straight.resume.history
    for role in ("G", "G_ema", "D"):
        a, b = resumed.modules[role].state_dict(), straight.modules[role].state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), role
    # the file holds the same weights (rounding may differ for tensors read from the file)
    _close(gan_core.load(path).generate("0-1"), straight.generate("0-1"), 1e-6)


@pytest.mark.slow
def test_cli_trains_fastgan_with_its_defaults(tmp_path):
    from gan_core.cli import main
    out = tmp_path / "fg.safetensors"
    threads = torch.get_num_threads()
    try:
        rc = main(["train", "--arch", "fastgan", "--width", "4", "--steps", "1", "--batch", "2",
                   "--data", "builtin:mondrian", "--count", "4", "--threads", "1",
                   "--preview-every", "0", "--checkpoint-every", "0", "--device", "cpu",
                   "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    model = gan_core.load(out)
    assert model.arch == "fastgan" and model.image_size == 256  # the fastgan default size
    assert (model.config.ngf, model.config.ndf, model.config.latent_dim) == (4, 4, 256)
    assert model.resume.train_config["augment"] == "color,translation"  # its default policy
    assert out.with_suffix(".png").is_file()


@pytest.mark.slow
def test_train_node_maps_width_and_auto_augmentation(comfy, pack, tmp_path):
    fp, utils, mm = comfy
    fp.configure(str(tmp_path))
    pack.nodes.bridge.register_model_folder()
    mm.interrupt_current_processing(False)
    cls = pack.nodes.node_classes()["GANAtelierTrain"]
    spec = cls.INPUT_TYPES()["required"]
    assert "fastgan" in spec["arch"][1]["options"] and spec["augmentation"][1]["default"] == "auto"
    inputs = dict(arch="fastgan", builtin_dataset="mondrian", resolution=256, width=4, steps=1,
                  batch_size=2, learning_rate=2e-4, loss="bce", augmentation="auto",
                  r1_gamma=0.0, seed=0, preview_every=0, checkpoint_every=0,
                  filename_prefix="tests/fastgan")
    node = cls()
    with torch.inference_mode():
        images = torch.rand(2, 64, 64, 3)  # small: the built-in set would draw hundreds
        model, loss, preview = getattr(node, cls.FUNCTION)(**inputs, images=images)
    assert model.arch == "fastgan" and (model.config.ngf, model.config.ndf) == (4, 4)
    assert model.resume.train_config["augment"] == "color,translation"
    assert set(loss) >= {"loss", "loss_d", "loss_g", "recon"} and len(loss["recon"]) == 1
    assert preview.shape[-1] == 3
