"""The latent nodes run as ComfyUI runs them: the pack imported by file location, nodes called
under torch.inference_mode(), the faithful fakes of folder_paths, comfy.utils and
comfy.model_management (tests/comfy_fakes), whose progress hook checks for interruption on
every update as ComfyUI's server hook does."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

LATENT_NODES = {
    "GANAtelierLatentWalk": "Latent Walk (GAN Atelier)",
    "GANAtelierInvertImage": "Invert Image (GAN Atelier)",
    "GANAtelierGenerateFromLatent": "Generate From Latent (GAN Atelier)",
    "GANAtelierStyleMix": "Style Mix (GAN Atelier)",
}


@pytest.fixture
def env(node_env):
    _, mm, calls = node_env
    return mm, calls


@pytest.fixture(scope="module")
def dcgan(latent_models):
    return latent_models.varied_dcgan()


def run(pack, node_id, **inputs):
    obj = pack.nodes.node_classes()[node_id]()
    with torch.inference_mode():
        return getattr(obj, obj.FUNCTION)(**inputs)


def test_latent_nodes_are_registered_with_their_types(pack):
    for node_id, display in LATENT_NODES.items():
        assert {k: c.GET_SCHEMA().display_name for k, c in pack.nodes.node_classes().items()}[node_id] == display
        cls = pack.nodes.node_classes()[node_id]
        assert cls.CATEGORY == "GAN Atelier/latent" and len(cls.DESCRIPTION) > 40
        spec = cls.INPUT_TYPES()
        for name, (kind, opts) in {**spec["required"], **spec.get("optional", {})}.items():
            assert opts.get("tooltip"), f"{node_id}.{name}"
    walk = pack.nodes.node_classes()["GANAtelierLatentWalk"]
    assert walk.RETURN_TYPES == ["IMAGE", "FLOAT"]
    assert pack.nodes.node_classes()["GANAtelierInvertImage"].RETURN_TYPES == ["GAN_LATENT", "IMAGE", "FLOAT"]
    assert pack.nodes.node_classes()["GANAtelierGenerateFromLatent"].INPUT_TYPES()["required"]["latent"][0] == "GAN_LATENT"


def test_latent_walk_node_gives_frames_and_an_fps_hint(env, pack, dcgan):
    _, calls = env
    frames, fps = run(pack, "GANAtelierLatentWalk", model=dcgan, seeds="1,5,9", frames=12,
                      mode="auto", easing="ease_in_out", loop=True)
    assert frames.shape == (12, 32, 32, 3) and frames.dtype == torch.float32
    assert 0 <= frames.min() and frames.max() <= 1
    assert isinstance(fps, float) and 6 <= fps <= 24
    assert torch.equal(frames[0], dcgan.generate(1)[0])
    assert calls[-1][:2] == (12, 12)
    with pytest.raises(ValueError, match="seeds"):
        run(pack, "GANAtelierLatentWalk", model=dcgan, seeds="1,x", frames=4, mode="auto",
            easing="linear", loop=True)


def test_invert_then_generate_from_latent(env, pack, dcgan):
    _, calls = env
    with torch.inference_mode():
        pictures = torch.cat([dcgan.generate(40), torch.rand(1, 32, 32, 3)])
    latent, recon, psnr = run(pack, "GANAtelierInvertImage", model=dcgan, image=pictures,
                              steps=20, space="auto", seed=0)
    assert isinstance(latent, pack.gan_core.GANLatent) and latent.space == "z" and len(latent) == 2
    assert recon.shape == (2, 32, 32, 3) and isinstance(psnr, float) and psnr > 10
    assert [p for _, _, p in calls if p is not None], "the reconstruction is previewed"
    assert calls[-1][:2] == (40, 40)
    (same,) = run(pack, "GANAtelierGenerateFromLatent", model=dcgan, latent=latent, count=1,
                  variation_strength=0.0, seed=0)
    torch.testing.assert_close(same, recon, atol=1e-5, rtol=0)
    (varied,) = run(pack, "GANAtelierGenerateFromLatent", model=dcgan, latent=latent, count=3,
                    variation_strength=0.5, seed=4)
    assert varied.shape == (6, 32, 32, 3)
    assert not torch.equal(varied[0], varied[1]) and not torch.equal(varied[0], same[0])
    # A walk can start from the inverted latent: first frame = its image, then the seed.
    frames, _ = run(pack, "GANAtelierLatentWalk", model=dcgan, seeds="7", frames=6, mode="auto",
                    easing="linear", loop=False, latent=latent[0:1])
    torch.testing.assert_close(frames[0], recon[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(frames[-1], dcgan.generate(7)[0], atol=1e-5, rtol=0)


def test_cancel_during_inversion_raises_the_interrupt(env, pack, dcgan, comfy):
    mm, _ = env
    _, utils, _ = comfy
    weights = {k: v.clone() for k, v in dcgan.module.state_dict().items()}
    seen = []

    def cancel_at_three(value, total, preview, node_id=None):
        seen.append(value)
        if value >= 3:
            mm.interrupt_current_processing(True)
        mm.throw_exception_if_processing_interrupted()

    utils.set_progress_bar_global_hook(cancel_at_three)
    obj = pack.nodes.node_classes()["GANAtelierInvertImage"]()
    with pytest.raises(mm.InterruptProcessingException), torch.inference_mode():
        obj.execute(model=dcgan, image=torch.rand(1, 32, 32, 3), steps=500, space="z", seed=0)
    assert 3 <= max(seen) < 500
    assert all(torch.equal(weights[k], v) for k, v in dcgan.module.state_dict().items())


def test_style_mix_node(env, pack, dcgan, latent_models):
    toy = latent_models.toy_model()
    (mixed,) = run(pack, "GANAtelierStyleMix", model=toy, seed=1, mix_seed=2, layers="coarse")
    assert mixed.shape == (1, 16, 16, 3)
    latent = pack.gan_core.seed_latent(toy, "3-4")
    (from_latent,) = run(pack, "GANAtelierStyleMix", model=toy, seed=1, mix_seed=2,
                         layers="middle", latent=latent)
    assert from_latent.shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match="per-layer styles"):
        run(pack, "GANAtelierStyleMix", model=dcgan, seed=1, mix_seed=2, layers="coarse")


def test_latent_nodes_refuse_other_tasks(env, pack):
    from gan_core.archs import get_arch

    spec = get_arch("transformer_net")
    style = pack.gan_core.GANModel("transformer_net", spec.config_cls(), spec.build(spec.config_cls()))
    with pytest.raises(ValueError, match="expected a generator"):
        run(pack, "GANAtelierLatentWalk", model=style, seeds="1,2", frames=4, mode="auto",
            easing="linear", loop=True)


def test_public_stylegan2_and_fastgan_files_run_through_the_nodes(env, pack, comfy):
    """A rosinality training .pt (pickled Namespace included) and a FastGAN-pytorch <it>.pth,
    dropped into models/gan, load with Load GAN Model and drive Generate, Latent Walk and Style
    Mix like a model trained here."""
    import argparse

    from gan_core.archs.fastgan.public import export_public
    from gan_core.archs import get_arch

    fp, _, _ = comfy
    gan = Path(fp.get_folder_paths("gan")[0])
    gan.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    sg_spec = get_arch("stylegan2")
    sg_cfg = sg_spec.config_cls(image_size=16, style_dim=16, n_mlp=2, channel_multiplier=1,
                                base_channels=16)
    g_ema = sg_spec.build(sg_cfg)["G"]
    torch.save({"g_ema": g_ema.state_dict(), "g": g_ema.state_dict(), "ada_aug_p": 0.0,
                "args": argparse.Namespace(size=16, channel_multiplier=1, n_mlp=2)},
               gan / "010000.pt")
    fg_spec = get_arch("fastgan")
    fg_cfg = fg_spec.config_cls(image_size=256, latent_dim=8, ngf=4, ndf=4)
    fg = pack.gan_core.GANModel("fastgan", fg_cfg, fg_spec.build(fg_cfg))
    torch.save(export_public(fg), gan / "5000.pth")

    sg, info = run(pack, "GANAtelierLoadModel", model_name="010000.pt")
    assert sg.arch == "stylegan2" and '"stylegan2"' in info
    (images,) = run(pack, "GANAtelierGenerate", model=sg, seed=3, count=2, truncation=0.7)
    assert images.shape == (2, 16, 16, 3)
    (mixed,) = run(pack, "GANAtelierStyleMix", model=sg, seed=3, mix_seed=4, layers="coarse")
    assert mixed.shape == (1, 16, 16, 3) and not torch.equal(mixed[0], images[0])

    fast, _ = run(pack, "GANAtelierLoadModel", model_name="5000.pth")
    assert fast.arch == "fastgan" and fast.discriminator is not None
    (one,) = run(pack, "GANAtelierGenerate", model=fast, seed=5, count=1, truncation=1.0)
    frames, fps = run(pack, "GANAtelierLatentWalk", model=fast, seeds="5,6", frames=4,
                      mode="auto", easing="linear", loop=True)
    assert one.shape == (1, 256, 256, 3) and frames.shape == (4, 256, 256, 3)
    torch.testing.assert_close(frames[0], one[0], atol=1e-5, rtol=0)


def test_latent_walk_between_two_inverted_latents_needs_no_seed(env, pack, dcgan):
    """A two-code latent is two stops: the seeds box may be left empty."""
    latent = pack.gan_core.seed_latent(dcgan, [3, 8])
    frames, _ = run(pack, "GANAtelierLatentWalk", model=dcgan, seeds=" ", frames=5, mode="auto",
                    easing="linear", loop=False, latent=latent)
    torch.testing.assert_close(frames[0], dcgan.generate(3)[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(frames[-1], dcgan.generate(8)[0], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="at least two stops"):
        run(pack, "GANAtelierLatentWalk", model=dcgan, seeds="", frames=5, mode="auto",
            easing="linear", loop=False, latent=latent[0])
    with pytest.raises(ValueError, match="seeds: no seed"):
        run(pack, "GANAtelierLatentWalk", model=dcgan, seeds="", frames=5, mode="auto",
            easing="linear", loop=False)
