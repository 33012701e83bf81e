"""GANModel.generate and seed parsing: layout, range, per-seed determinism, truncation."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gan_core
from gan_core.model import GANModel
from gan_core.archs import get_arch
from gan_core.seeds import latents_for_seeds

pytestmark = pytest.mark.usefixtures("core_single_thread")


def _fresh_model(arch: str = "dcgan", **config) -> GANModel:
    spec = get_arch(arch)
    cfg = spec.config_cls(**config)
    torch.manual_seed(0)
    parts = spec.build(cfg)
    return GANModel(arch, cfg, {"G": parts["G"], "D": parts["D"]})


# --------------------------------------------------------------------------- generate

def test_generate_layout_dtype_range(core_trained):
    model, _ = core_trained
    images = model.generate("0-5")
    assert images.shape == (6, model.image_size, model.image_size, 3)
    assert images.dtype == torch.float32
    assert images.device.type == "cpu"
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.is_contiguous()
    # Different seeds give different images.
    assert not torch.equal(images[0], images[1])


def test_grayscale_models_give_rgb_images():
    model = _fresh_model("dcgan", image_size=32, channels=1, ngf=4, ndf=4)
    images = model.generate([0, 1])
    assert images.shape == (2, 32, 32, 3)
    assert torch.equal(images[..., 0], images[..., 1]) and torch.equal(images[..., 1], images[..., 2])

    mlp = _fresh_model("mlp", image_size=12, g_hidden=(16,), d_hidden=(16,))
    out = mlp.generate("3-4")
    assert out.shape == (2, 12, 12, 3)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_a_seed_gives_the_same_image_whatever_shares_the_batch(core_trained):
    model, _ = core_trained
    alone = model.generate(5)
    with_others = model.generate([1, 5, 9])
    many = model.generate([11, 12, 13, 5, 14, 15, 16, 17])
    small_batches = model.generate([1, 5, 9], batch_size=2)
    assert torch.equal(alone[0], with_others[1])
    assert torch.equal(alone[0], many[3])
    assert torch.equal(with_others, small_batches)
    # ...and on every call: generation is stateless (eval mode, per-seed generators).
    assert torch.equal(model.generate([1, 5, 9]), with_others)
    assert torch.equal(model.generate("5")[0], alone[0])


def test_generate_accepts_every_seed_form(core_trained):
    model, _ = core_trained
    ref = model.generate([2, 3, 4])
    assert torch.equal(model.generate("2-4"), ref)
    assert torch.equal(model.generate("2,3,4"), ref)
    assert torch.equal(model.generate(range(2, 5)), ref)
    assert torch.equal(model.generate(3)[0], ref[1])


def test_extreme_seeds_work(core_trained):
    model, _ = core_trained
    images = model.generate([0, gan_core.MAX_SEED])
    assert images.shape[0] == 2
    assert not torch.equal(images[0], images[1])
    with pytest.raises(ValueError, match="outside"):
        model.generate(gan_core.MAX_SEED + 1)


def test_truncation_zero_gives_one_image_for_all_seeds(core_trained):
    model, _ = core_trained
    images = model.generate("0-4", truncation=0.0)
    for i in range(1, 5):
        assert torch.equal(images[0], images[i])
    # It is the image of the all-zero latent, the prior's mean.
    net = model.module.eval()
    with torch.no_grad():
        mean_image = net(torch.zeros(1, model.latent_dim))
    expected = mean_image.add(1).mul(0.5).clamp(0, 1).permute(0, 2, 3, 1)
    assert torch.allclose(images[0], expected[0], atol=1e-6)


def test_truncation_scales_the_latent(core_trained):
    model, _ = core_trained
    net = model.module.eval()
    z = latents_for_seeds([8], model.latent_dim) * 0.5
    with torch.no_grad():
        expected = net(z).add(1).mul(0.5).clamp(0, 1).permute(0, 2, 3, 1)
    assert torch.allclose(model.generate(8, truncation=0.5), expected, atol=1e-6)


@pytest.mark.parametrize("bad", [-0.1, 2.5])
def test_truncation_out_of_range(core_trained, bad):
    model, _ = core_trained
    with pytest.raises(ValueError, match="truncation"):
        model.generate(0, truncation=bad)


def test_generate_uses_the_ema_generator(core_trained):
    model, _ = core_trained
    assert model.module is model.modules["G_ema"]
    g_only = GANModel(model.arch, model.config, {"G": model.modules["G_ema"]})
    assert torch.equal(g_only.generate("0-2"), model.generate("0-2"))


def test_generate_does_not_touch_batchnorm_statistics(core_trained):
    model, _ = core_trained
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    model.generate("0-7")
    after = model.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_latents_are_standard_normal_per_seed():
    z = latents_for_seeds(range(200), 64)
    assert z.shape == (200, 64)
    assert abs(z.mean().item()) < 0.05
    assert z.std().item() == pytest.approx(1.0, abs=0.05)
    assert torch.equal(latents_for_seeds([17], 64)[0], z[17])


# --------------------------------------------------------------------------- seeds

@pytest.mark.parametrize("spec,expected", [
    ("0-15", list(range(16))),
    ("1,5,9-11", [1, 5, 9, 10, 11]),
    (" 3 , 7 ", [3, 7]),
    ("4-4", [4]),
    ("2,,3,", [2, 3]),
    (7, [7]),
    ([3, 1, 2], [3, 1, 2]),
    (range(3), [0, 1, 2]),
    (str(gan_core.MAX_SEED), [gan_core.MAX_SEED]),
    (f"{gan_core.MAX_SEED - 1}-{gan_core.MAX_SEED}", [gan_core.MAX_SEED - 1, gan_core.MAX_SEED]),
])
def test_parse_seeds(spec, expected):
    assert gan_core.parse_seeds(spec) == expected


@pytest.mark.parametrize("bad", ["a", "1-", "-3", "5-3", "1.5", "0x10", "1-2-3", "", " , ", []])
def test_parse_seeds_rejects_bad_strings(bad):
    with pytest.raises(ValueError, match="seeds"):
        gan_core.parse_seeds(bad)


@pytest.mark.parametrize("bad", [-1, gan_core.MAX_SEED + 1, [0, -5], str(gan_core.MAX_SEED + 1)])
def test_parse_seeds_range(bad):
    with pytest.raises(ValueError, match="outside 0"):
        gan_core.parse_seeds(bad)


def test_seed_error_names_the_bad_part():
    with pytest.raises(ValueError, match="'x7'"):
        gan_core.parse_seeds("1,x7,3")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, gan_core.MAX_SEED), st.integers(0, 5), st.booleans()),
                min_size=1, max_size=6))
def test_parse_seeds_property(parts):
    """Any comma list of single seeds and short inclusive ranges parses to their expansion."""
    text, expected = [], []
    for start, length, as_range in parts:
        end = min(start + length, gan_core.MAX_SEED)
        if as_range:
            text.append(f"{start}-{end}")
            expected.extend(range(start, end + 1))
        else:
            text.append(str(start))
            expected.append(start)
    assert gan_core.parse_seeds(", ".join(text)) == expected


def test_huge_ranges_are_refused_without_building_them():
    """A seed widget or CLI typo like 0-18446744073709551615 must error at once, not try to
    allocate 2**64 list entries."""
    from gan_core.seeds import MAX_SEED_COUNT

    with pytest.raises(ValueError, match="more than"):
        gan_core.parse_seeds(f"0-{gan_core.MAX_SEED}")
    with pytest.raises(ValueError, match="more than"):
        gan_core.parse_seeds(f"5,0-{MAX_SEED_COUNT - 1}")  # the total counts, not each range
    assert len(gan_core.parse_seeds(f"0-{MAX_SEED_COUNT - 1}")) == MAX_SEED_COUNT
