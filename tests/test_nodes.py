"""The node classes, run the way ComfyUI runs them: the pack imported by file location,
nodes called under torch.inference_mode(), with faithful fakes of folder_paths, comfy.utils
and comfy.model_management (tests/comfy_fakes). torch and numpy are real throughout."""
from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TINY = dict(arch="dcgan", builtin_dataset="blobs", resolution=32, width=8, steps=6, batch_size=4,
            learning_rate=2e-4, loss="bce", augmentation="none", r1_gamma=0.0, seed=0,
            preview_every=3, checkpoint_every=3, filename_prefix="tests/tiny")


@pytest.fixture
def env(node_env):
    return node_env


def node(pack, node_id):
    return pack.nodes.node_classes()[node_id]()


def run(pack, node_id, **inputs):
    """Call a node's FUNCTION as ComfyUI's executor does: in inference mode."""
    obj = node(pack, node_id)
    with torch.inference_mode():
        return getattr(obj, obj.FUNCTION)(**inputs)


# ----------------------------------------------------------------------------- contract

def test_every_node_follows_the_v3_contract(pack):
    """A V3 node: a schema with an id, a display name, a category, a description, a tooltip on
    every input, and an execute that takes every input by name."""
    classes = pack.nodes.node_classes()
    assert {"GANAtelierTrain", "GANAtelierGenerate", "GANAtelierLoadModel",
            "GANAtelierSaveModel", "GANAtelierExampleDataset"} <= set(classes)
    for node_id, cls in classes.items():
        schema = cls.GET_SCHEMA()
        assert schema.node_id == node_id and node_id.startswith("GANAtelier")
        assert schema.display_name.endswith("(GAN Atelier)")
        assert cls.CATEGORY.startswith("GAN Atelier/")
        assert len(cls.DESCRIPTION) > 20
        spec = cls.INPUT_TYPES()
        inputs = {**spec.get("required", {}), **spec.get("optional", {})}
        for name, (kind, *opts) in inputs.items():
            assert opts and opts[0].get("tooltip"), f"{node_id}.{name} has no tooltip"
            if kind == "INT" and name == "seed":
                assert opts[0]["max"] == 0xFFFFFFFFFFFFFFFF
        params = inspect.signature(cls.execute).parameters
        assert set(inputs) <= set(params), f"{node_id} cannot take all its inputs"
        assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES)
        assert all(o.tooltip for o in schema.outputs), f"{node_id} has an output without a tooltip"


def test_the_pack_offers_its_nodes_through_comfy_entrypoint(pack):
    """ComfyUI's V3 loader: comfy_entrypoint() -> a ComfyExtension whose node list it
    registers by schema id (and no NODE_CLASS_MAPPINGS, which ComfyUI would take first)."""
    import asyncio

    from comfy_api.latest import ComfyExtension

    assert not hasattr(pack, "NODE_CLASS_MAPPINGS")
    assert pack.WEB_DIRECTORY == "./web"
    extension = pack.comfy_entrypoint()
    assert isinstance(extension, ComfyExtension)
    nodes = asyncio.run(extension.get_node_list())
    assert {c.GET_SCHEMA().node_id for c in nodes} == set(pack.nodes.node_classes())


def test_new_training_nodes_start_with_a_fixed_seed(pack):
    """The frontend sets a fresh seed control to "randomize", which would retrain from zero on
    every queue: the pack's web extension sets it to "fixed" on exactly the trainers and the
    built-in examples feeding them and long renders (checked against the schemas, so a new trainer can't be
    missed); Generate-type nodes keep randomize."""
    import re

    js = (REPO / "web" / "js" / "gan_atelier.js").read_text(encoding="utf-8")
    block = js.split("FIXED_SEED_NODES = new Set([", 1)[1].split("]", 1)[0]
    listed = set(re.findall(r'"(GANAtelier\w+)"', block))
    classes = pack.nodes.node_classes()
    with_seed = {node_id for node_id, cls in classes.items()
                 if "seed" in {**cls.INPUT_TYPES().get("required", {}),
                               **cls.INPUT_TYPES().get("optional", {})}}
    trainers = {node_id for node_id in with_seed if node_id.startswith("GANAtelierTrain")}
    assert trainers == {"GANAtelierTrain", "GANAtelierTrainStyle", "GANAtelierTrainDenoiser"}
    assert listed == trainers | {"GANAtelierExampleDataset", "GANAtelierExampleSong"}
    assert "nodeCreated" in js and 'control.value = "fixed"' in js
    assert (REPO / pack.WEB_DIRECTORY / "js" / "gan_atelier.js").is_file()
    # the seed widget still offers the control (workflows saved so far keep their value)
    for node_id in listed | {"GANAtelierGenerate"}:
        spec = classes[node_id].INPUT_TYPES()
        seed = {**spec.get("required", {}), **spec.get("optional", {})}["seed"]
        assert seed[1].get("control_after_generate") is True, node_id


def test_every_node_has_a_help_page_naming_its_inputs(pack):
    """The frontend's node library shows web/docs/<NodeId>.md: one per node, titled with the
    node's name, mentioning each input a user sets (sockets and widgets alike)."""
    docs = REPO / pack.WEB_DIRECTORY / "docs"
    classes = pack.nodes.node_classes()
    assert {p.stem for p in docs.glob("*.md")} == set(classes)
    for node_id, cls in classes.items():
        text = (docs / f"{node_id}.md").read_text(encoding="utf-8")
        title = cls.GET_SCHEMA().display_name.replace(" (GAN Atelier)", "")
        assert text.startswith(f"# {title}\n"), node_id
        spec = cls.INPUT_TYPES()
        for name in {**spec.get("required", {}), **spec.get("optional", {})}:
            assert name in text, f"{node_id}.md does not explain {name}"


def test_pack_uses_gan_core_only_through_its_public_api():
    for path in (REPO / "nodes").glob("*.py"):
        text = path.read_text()
        for line in text.splitlines():
            assert not line.strip().startswith("from ..gan_core."), f"{path.name}: {line}"
            assert "import gan_core." not in line, f"{path.name}: {line}"


def test_model_folder_keeps_user_paths_and_filters_extensions(comfy, pack, tmp_path):
    fp, _, _ = comfy
    fp.configure(str(tmp_path))
    user_dir = str(tmp_path / "elsewhere" / "gan")
    fp.add_model_folder_path("gan", user_dir)  # as extra_model_paths.yaml would, before us
    pack.nodes.bridge.register_model_folder()
    paths, exts = fp.folder_names_and_paths["gan"]
    assert paths[0] == os.path.join(fp.models_dir, "gan") and user_dir in paths
    assert exts == {".safetensors", ".pth", ".pt", ".pkl"}  # .pkl: NVIDIA network pickles
    os.makedirs(paths[0])
    for name in ("a.safetensors", "b.pth", "c.pkl", "notes.txt"):
        Path(paths[0], name).write_bytes(b"x")
    assert fp.get_filename_list("gan") == ["a.safetensors", "b.pth", "c.pkl"]


# ----------------------------------------------------------------------------- training

def test_train_node_trains_checkpoints_and_previews(env, pack):
    fp, mm, calls = env
    model, loss, preview = run(pack, "GANAtelierTrain", **TINY)
    assert model.task == "generate" and model.resume.step == 6
    assert len(loss["loss"]) == 6 and set(loss) >= {"loss", "loss_d", "loss_g"}
    assert preview.shape[0] == 1 and preview.shape[-1] == 3 and preview.dtype == torch.float32
    saved = Path(fp.get_folder_paths("gan")[0], "tests", "tiny_00001_.safetensors")
    assert saved.is_file()
    assert pack.gan_core.load(saved).resume.step == 6
    previews = [p for _, _, p in calls if p is not None]
    assert previews and previews[0][0] == "JPEG" and previews[0][2] == 512
    assert calls[-1][0] == calls[-1][1] == 6
    assert mm.empty_cache_calls > 0


def test_train_node_accepts_an_image_batch_made_in_inference_mode(env, pack):
    with torch.inference_mode():
        images = torch.rand(5, 40, 48, 3)  # ComfyUI hands nodes inference tensors
    model, loss, _ = run(pack, "GANAtelierTrain", **{**TINY, "steps": 2}, images=images)
    assert model.training["dataset"] == "images" and model.training["dataset_size"] == 5


def test_train_node_reads_a_folder_inside_input_and_refuses_escapes(env, pack):
    fp, _, _ = env
    folder = Path(fp.get_input_directory(), "paintings")
    folder.mkdir()
    from PIL import Image
    for i in range(3):
        Image.new("RGB", (50, 40), (40 * i, 100, 200)).save(folder / f"p{i}.png")
    model, _, _ = run(pack, "GANAtelierTrain", **{**TINY, "steps": 2}, folder="paintings")
    assert model.training["dataset_size"] == 3
    outside = Path(fp.base_path, "secret")
    outside.mkdir()
    os.symlink(outside, Path(fp.get_input_directory(), "link"))
    for bad in ("../secret", str(outside), "link", "C:\\data", "a\x00b"):
        with pytest.raises(ValueError, match="folder"):
            run(pack, "GANAtelierTrain", **{**TINY, "steps": 1}, folder=bad)


def test_train_node_refuses_prefixes_that_leave_models_gan(env, pack):
    for bad in ("../../evil", "/tmp/evil", "..\\evil"):
        with pytest.raises(ValueError, match="filename_prefix"):
            run(pack, "GANAtelierTrain", **{**TINY, "steps": 1, "filename_prefix": bad})


def test_cancel_saves_a_checkpoint_then_propagates(env, pack):
    fp, mm, calls = env
    tn = node(pack, "GANAtelierTrain")
    steps_seen = []

    def cancel_at_three(value, total, preview, node_id=None):
        steps_seen.append(value)
        if value >= 3:
            mm.interrupt_current_processing(True)
        mm.throw_exception_if_processing_interrupted()

    import comfy.utils
    comfy.utils.set_progress_bar_global_hook(cancel_at_three)
    with pytest.raises(mm.InterruptProcessingException), torch.inference_mode():
        tn.execute(**{**TINY, "steps": 50, "preview_every": 1, "checkpoint_every": 0})
    saved = Path(fp.get_folder_paths("gan")[0], "tests", "tiny_00001_.safetensors")
    m = pack.gan_core.load(saved)
    assert 3 <= m.resume.step < 50
    assert len(m.resume.history["loss_g"]) == m.resume.step


def test_same_prefix_never_overwrites_and_resume_continues(env, pack):
    fp, _, _ = env
    run(pack, "GANAtelierTrain", **{**TINY, "steps": 3})
    run(pack, "GANAtelierTrain", **{**TINY, "steps": 3})
    gan = Path(fp.get_folder_paths("gan")[0], "tests")
    assert sorted(p.name for p in gan.iterdir()) == ["tiny_00001_.safetensors", "tiny_00002_.safetensors"]
    model, loss, _ = run(pack, "GANAtelierTrain", **{**TINY, "steps": 5},
                         resume="tests/tiny_00001_.safetensors")
    assert model.resume.step == 5 and len(loss["loss"]) == 5
    first = pack.gan_core.load(gan / "tiny_00001_.safetensors")
    assert loss["loss"][:3] == first.resume.history["loss_g"]


def test_train_is_changed_follows_the_folder_contents(env, pack):
    fp, _, _ = env
    folder = Path(fp.get_input_directory(), "set")
    folder.mkdir()
    from PIL import Image
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    cls = pack.nodes.node_classes()["GANAtelierTrain"]
    before = cls.fingerprint_inputs(folder="set")
    assert before == cls.fingerprint_inputs(folder="set")
    Image.new("RGB", (8, 8)).save(folder / "b.png")
    assert cls.fingerprint_inputs(folder="set") != before


# ----------------------------------------------------------------------------- the rest

@pytest.fixture
def trained(env, pack):
    model, _, _ = run(pack, "GANAtelierTrain", **{**TINY, "steps": 2})
    return model


def test_generate_node_matches_seeds_and_count(env, pack, trained):
    (images,) = run(pack, "GANAtelierGenerate", model=trained, seed=7, count=5, truncation=1.0)
    assert images.shape == (5, 32, 32, 3) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    # Batch size changes the conv kernels' summation order: equal up to float rounding.
    torch.testing.assert_close(images[2:3], trained.generate([9]), atol=1e-5, rtol=0)
    top = 0xFFFFFFFFFFFFFFFF
    (wrap,) = run(pack, "GANAtelierGenerate", model=trained, seed=top, count=2, truncation=1.0)
    torch.testing.assert_close(wrap[1:], trained.generate([0]), atol=1e-5, rtol=0)


def test_save_and_load_nodes_round_trip_without_overwriting(env, pack, trained):
    fp, _, _ = env
    out1 = run(pack, "GANAtelierSaveModel", model=trained, filename_prefix="mine/run",
               include_training_state=False)
    out2 = run(pack, "GANAtelierSaveModel", model=trained, filename_prefix="mine/run",
               include_training_state=True)
    name1, name2 = out1.result[0], out2.result[0]
    assert (name1, name2) == ("mine/run_00001_.safetensors", "mine/run_00002_.safetensors")
    assert out1.ui == {"text": ["saved models/gan/mine/run_00001_.safetensors"]}
    assert name1 in pack.nodes.bridge.model_names()
    loaded, info = run(pack, "GANAtelierLoadModel", model_name=name1)
    assert loaded.resume is None and '"arch": "dcgan"' in info
    torch.testing.assert_close(loaded.generate([1, 2]), trained.generate([1, 2]), atol=0, rtol=0)
    cls = pack.nodes.node_classes()["GANAtelierLoadModel"]
    stamp = cls.fingerprint_inputs(name1)
    pack.gan_core.save(trained, Path(fp.get_folder_paths("gan")[0], name1))
    assert cls.fingerprint_inputs(name1) != stamp
    for bad in ("../../secret.safetensors", "/etc/passwd", "C:/x.safetensors"):
        with pytest.raises(ValueError, match="model_name"):
            run(pack, "GANAtelierLoadModel", model_name=bad)
    with pytest.raises(ValueError, match="filename_prefix"):
        run(pack, "GANAtelierSaveModel", model=trained, filename_prefix="../escape",
            include_training_state=True)


def test_load_node_names_a_foreign_file(env, pack):
    fp, _, _ = env
    gan = Path(fp.get_folder_paths("gan")[0])
    gan.mkdir(parents=True, exist_ok=True)
    torch.save({"foo.weight": torch.zeros(2)}, gan / "foreign.pth")
    with pytest.raises(ValueError, match="foreign.pth"):
        run(pack, "GANAtelierLoadModel", model_name="foreign.pth")


def test_example_dataset_and_grid_nodes(env, pack):
    (images,) = run(pack, "GANAtelierExampleDataset", style="rings", count=6, resolution=24, seed=3)
    assert images.shape == (6, 24, 24, 3)
    (again,) = run(pack, "GANAtelierExampleDataset", style="rings", count=6, resolution=24, seed=3)
    assert torch.equal(images, again)
    (grid,) = run(pack, "GANAtelierImageGrid", images=images, columns=3, padding=2)
    assert grid.shape == (1, 2 * 26 + 2, 3 * 26 + 2, 3)
    assert torch.equal(grid[0, 2:26, 2:26], images[0])


def test_style_transfer_node_runs_a_public_pth_loaded_from_models_gan(env, pack):
    fp, _, calls = env
    gan = Path(fp.get_folder_paths("gan")[0])
    gan.mkdir(parents=True, exist_ok=True)
    spec = pack.gan_core.archs.get_arch("transformer_net")
    torch.manual_seed(0)
    torch.save(spec.build(spec.config_cls())["G"].state_dict(), gan / "candy.pth")
    assert "candy.pth" in pack.nodes.bridge.model_names()
    model, info = run(pack, "GANAtelierLoadModel", model_name="candy.pth")
    assert model.task == "style" and '"transformer_net"' in info
    with torch.inference_mode():
        images = torch.rand(2, 37, 45, 3)
    (out,) = run(pack, "GANAtelierStyleTransfer", model=model, images=images, strength=1.0, tile=0)
    assert out.shape == images.shape and 0.0 <= out.min() and out.max() <= 1.0
    assert not torch.allclose(out, images)
    (same,) = run(pack, "GANAtelierStyleTransfer", model=model, images=images, strength=0.0, tile=0)
    torch.testing.assert_close(same, images)
    assert calls[-1][:2] == (2, 2)


def test_style_transfer_node_refuses_a_generator(env, pack, trained):
    with pytest.raises(ValueError, match="style model"):
        run(pack, "GANAtelierStyleTransfer", model=trained, images=torch.rand(1, 8, 8, 3),
            strength=1.0, tile=0)


def test_add_noise_node_applies_a_seeded_recipe_and_names_bad_ones(env, pack):
    with torch.inference_mode():
        grey = torch.full((2, 24, 24, 3), 0.5)
    (noisy,) = run(pack, "GANAtelierAddNoise", images=grey, recipe="gaussian:25", seed=3)
    (again,) = run(pack, "GANAtelierAddNoise", images=grey, recipe="gaussian:25", seed=3)
    assert noisy.shape == grey.shape and torch.equal(noisy, again)
    assert abs(float((noisy - grey).std()) - 25 / 255) < 0.2 * 25 / 255
    with pytest.raises(ValueError, match="gausian"):
        run(pack, "GANAtelierAddNoise", images=grey, recipe="gausian:25", seed=3)


def test_denoise_node_runs_a_public_dncnn_file(env, pack):
    fp, _, _ = env
    gan = Path(fp.get_folder_paths("gan")[0])
    gan.mkdir(parents=True, exist_ok=True)
    spec = pack.gan_core.archs.get_arch("dncnn")
    torch.manual_seed(0)
    cfg = spec.config_cls(in_nc=3, out_nc=3, nc=8, nb=4)
    torch.save(spec.build(cfg)["G"].state_dict(), gan / "dncnn_color.pth")
    model, _ = run(pack, "GANAtelierLoadModel", model_name="dncnn_color.pth")
    assert model.task == "denoise"
    with torch.inference_mode():
        images = torch.rand(2, 40, 30, 3)
    (out,) = run(pack, "GANAtelierDenoise", model=model, images=images, strength=1.0, sigma=25.0, tile=0)
    assert out.shape == images.shape and not torch.allclose(out, images)
    (tiled,) = run(pack, "GANAtelierDenoise", model=model, images=images, strength=1.0, sigma=25.0, tile=16)
    assert tiled.shape == images.shape
    with pytest.raises(ValueError, match="expected a style model, got a 'denoise' model"):
        run(pack, "GANAtelierStyleTransfer", model=model, images=images, strength=1.0, tile=0)


DENOISE_TINY = dict(noise="gaussian:25", builtin_dataset="mondrian", resolution=32, width=8,
                    steps=4, batch_size=4, adversarial_weight=0.05, learning_rate=1e-3, loss="l1",
                    seed=0, preview_every=2, checkpoint_every=2, filename_prefix="tests/den")


@pytest.mark.slow
def test_train_denoiser_node_trains_previews_cancels_and_resumes(env, pack):
    fp, mm, calls = env
    with torch.inference_mode():
        clean = torch.rand(3, 40, 52, 3)  # ComfyUI hands nodes inference tensors
    model, loss, preview = run(pack, "GANAtelierTrainDenoiser", **DENOISE_TINY, images=clean)
    assert model.task == "denoise" and model.arch == "unet_denoiser" and model.resume.step == 4
    assert len(loss["loss"]) == 4 and loss["loss"] == loss["loss_rec"] and "loss_d" in loss
    assert preview.shape == (1, 3 * 34 + 2, 3 * 34 + 2, 3)  # a row of noisy | denoised | clean per image
    assert model.training["dataset"] == "images" and model.training["dataset_size"] == 3
    previews = [p for _, _, p in calls if p is not None]
    assert previews and previews[0][0] == "JPEG" and calls[-1][0] == calls[-1][1] == 4
    assert mm.empty_cache_calls > 0
    gan = Path(fp.get_folder_paths("gan")[0], "tests")
    assert pack.gan_core.load(gan / "den_00001_.safetensors").resume.step == 4
    (out,) = run(pack, "GANAtelierDenoise", model=model, images=clean[:1], strength=1.0,
                 sigma=25.0, tile=0)
    assert out.shape == (1, 40, 52, 3)

    # Cancel from the progress hook: a checkpoint at the completed step, then the exception.
    def cancel_at_three(value, total, preview, node_id=None):
        if value >= 3:
            mm.interrupt_current_processing(True)
        mm.throw_exception_if_processing_interrupted()

    import comfy.utils
    comfy.utils.set_progress_bar_global_hook(cancel_at_three)
    with pytest.raises(mm.InterruptProcessingException):
        run(pack, "GANAtelierTrainDenoiser", **{**DENOISE_TINY, "steps": 50, "preview_every": 1,
                                                "checkpoint_every": 0, "adversarial_weight": 0.0})
    comfy.utils.set_progress_bar_global_hook(None)
    mm.interrupt_current_processing(False)
    cancelled = pack.gan_core.load(gan / "den_00002_.safetensors")
    assert 3 <= cancelled.resume.step < 50 and "loss_d" not in cancelled.resume.history

    # Resume from models/gan on the built-in dataset, with the noise-level input.
    model, loss, _ = run(pack, "GANAtelierTrainDenoiser", **{**DENOISE_TINY, "steps": 2},
                         noise_level_input=True)
    assert model.module.takes_noise_level
    resumed, loss, _ = run(pack, "GANAtelierTrainDenoiser", **{**DENOISE_TINY, "steps": 4},
                           noise_level_input=True, resume="tests/den_00003_.safetensors")
    assert resumed.resume.step == 4 and len(loss["loss"]) == 4
    assert loss["loss"][:2] == model.resume.history["loss_rec"]
    with pytest.raises(ValueError, match="gausian"):
        run(pack, "GANAtelierTrainDenoiser", **{**DENOISE_TINY, "noise": "gausian:25"})


STYLE_TINY = dict(content_builtin="blobs", style_builtin="painting", resolution=32, width=4,
                  blocks=1, steps=4, batch_size=1, learning_rate=2e-4, cycle_weight=10.0,
                  identity_weight=0.5, augmentation="none", seed=0, preview_every=2,
                  checkpoint_every=2, filename_prefix="tests/style")


@pytest.mark.slow
def test_train_style_node_trains_both_directions_cancels_and_resumes(env, pack):
    fp, mm, calls = env
    with torch.inference_mode():  # ComfyUI hands nodes inference tensors
        painting = torch.rand(1, 90, 70, 3)
        photos = torch.rand(2, 40, 52, 3)
    model, loss, preview = run(pack, "GANAtelierTrainStyle", **STYLE_TINY,
                               content_images=photos, style_images=painting)
    assert model.task == "style" and model.directions == ("A->B", "B->A")
    assert model.resume.step == 4 and len(loss["loss"]) == 4 and "loss_cycle" in loss
    assert "lr" not in loss
    assert preview.shape == (1, 2 * 34 + 2, 2 * 34 + 2, 3)  # content | stylized, per picture
    assert model.training["content_pictures"] == 2 and model.training["style"] == "style_images"
    assert model.config.ngf == 4 and model.config.ndf == 8
    previews = [p for _, _, p in calls if p is not None]
    assert previews and calls[-1][0] == calls[-1][1] == 4
    gan = Path(fp.get_folder_paths("gan")[0], "tests")
    assert pack.gan_core.load(gan / "style_00001_.safetensors").resume.step == 4
    for direction in ("A->B", "B->A"):
        (out,) = run(pack, "GANAtelierStyleTransfer", model=model, images=photos[:1],
                     strength=1.0, tile=0, direction=direction)
        assert out.shape == (1, 40, 52, 3)

    # Cancel from the progress hook: a checkpoint at the completed step, then the exception.
    def cancel_at_two(value, total, preview, node_id=None):
        if value >= 2:
            mm.interrupt_current_processing(True)
        mm.throw_exception_if_processing_interrupted()

    import comfy.utils
    comfy.utils.set_progress_bar_global_hook(cancel_at_two)
    with pytest.raises(mm.InterruptProcessingException):
        run(pack, "GANAtelierTrainStyle", **{**STYLE_TINY, "steps": 50, "preview_every": 1,
                                             "checkpoint_every": 0})
    comfy.utils.set_progress_bar_global_hook(None)
    mm.interrupt_current_processing(False)
    cancelled = pack.gan_core.load(gan / "style_00002_.safetensors")
    assert 2 <= cancelled.resume.step < 50 and cancelled.training["style"] == "builtin:painting"

    # Resume on the built-in sets from models/gan continues the same run.
    resumed, loss, _ = run(pack, "GANAtelierTrainStyle", **{**STYLE_TINY, "steps": 50},
                           resume="tests/style_00002_.safetensors")
    assert resumed.resume.step == 50 and len(loss["loss"]) == 50
    assert loss["loss"][:cancelled.resume.step] == cancelled.resume.history["loss_g"]


@pytest.mark.slow
def test_train_style_node_reads_input_folders_and_refuses_escapes(env, pack):
    fp, _, _ = env
    paintings = Path(fp.get_input_directory(), "paintings")
    paintings.mkdir(parents=True)
    from PIL import Image
    Image.new("RGB", (64, 48), (200, 120, 30)).save(paintings / "a.png")
    Image.new("RGB", (50, 80), (20, 120, 230)).save(paintings / "b.jpg")
    model, _, _ = run(pack, "GANAtelierTrainStyle", **{**STYLE_TINY, "steps": 1},
                      style_folder="paintings")
    assert model.training["style_pictures"] == 2
    key = pack.nodes.node_classes()["GANAtelierTrainStyle"].fingerprint_inputs(style_folder="paintings")
    Image.new("RGB", (30, 30)).save(paintings / "c.png")
    assert pack.nodes.node_classes()["GANAtelierTrainStyle"].fingerprint_inputs(
        style_folder="paintings") != key
    for bad in ("../outside", "/etc"):
        with pytest.raises(ValueError, match="style_folder"):
            run(pack, "GANAtelierTrainStyle", **{**STYLE_TINY, "steps": 1}, style_folder=bad)


def test_style_transfer_node_names_a_missing_direction(env, pack):
    spec = pack.gan_core.archs.get_arch("cyclegan_resnet")
    cfg = spec.config_cls(ngf=4, n_blocks=1)
    model = pack.gan_core.GANModel("cyclegan_resnet", cfg, {"G": spec.build(cfg)["G"]})
    with pytest.raises(ValueError, match="one generator"):
        run(pack, "GANAtelierStyleTransfer", model=model, images=torch.rand(1, 16, 16, 3),
            strength=1.0, tile=0, direction="B->A")


def test_train_style_is_changed_follows_a_single_painting_file(env, pack):
    fp, _, _ = env
    from PIL import Image
    canvas = Path(fp.get_input_directory(), "canvas.png")
    canvas.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (200, 10, 10)).save(canvas)
    cls = pack.nodes.node_classes()["GANAtelierTrainStyle"]
    key = cls.fingerprint_inputs(style_folder="canvas.png")
    assert cls.fingerprint_inputs(style_folder="canvas.png") == key
    Image.new("RGB", (41, 30), (10, 200, 10)).save(canvas)
    os.utime(canvas, ns=(1, 10**18))
    assert cls.fingerprint_inputs(style_folder="canvas.png") != key
    model, _, _ = run(pack, "GANAtelierTrainStyle", **{**STYLE_TINY, "steps": 1},
                      style_folder="canvas.png")
    assert model.training["style"] == "canvas.png" and model.training["style_pictures"] == 1
