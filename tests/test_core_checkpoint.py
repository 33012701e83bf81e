"""Our checkpoint format (save/load/info/metadata), atomic writes, and refusal of bad files."""
from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import gan_core
from gan_core.io.checkpoint import FORMAT_TAG, FORMAT_VERSION, atomic_write, read_safetensors
from gan_core.model import GANModel
from gan_core.archs import get_arch

pytestmark = pytest.mark.usefixtures("core_single_thread")


def _state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _copy(src, dst_dir, name="model.safetensors"):
    dst = dst_dir / name
    shutil.copyfile(src, dst)
    return dst


def _rewrite(path, edit_tensors=None, edit_meta=None):
    """Rewrite a safetensors file with edited tensors/metadata (a hand-made broken file)."""
    meta, tensors = read_safetensors(path)
    if edit_tensors:
        edit_tensors(tensors)
    if edit_meta:
        edit_meta(meta)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- round trip

def test_round_trip_restores_the_model_exactly(core_trained, tmp_path):
    model, _ = core_trained
    path = gan_core.save(model, tmp_path / "sub" / "m.safetensors")  # creates the folder
    assert path.is_file()
    loaded = gan_core.load(path)
    assert (loaded.arch, loaded.task, loaded.config) == (model.arch, model.task, model.config)
    assert set(loaded.modules) == {"G", "G_ema", "D"}
    for role in loaded.modules:
        assert _state_equal(loaded.modules[role], model.modules[role]), role
    assert torch.equal(loaded.generate("0-7"), model.generate("0-7"))
    assert loaded.training == model.training
    assert loaded.source == str(path)
    # the resume state survives too
    r0, r1 = model.resume, loaded.resume
    assert r1 is not None and (r1.step, r1.ema_count) == (r0.step, r0.ema_count)
    assert r1.history == r0.history
    assert torch.equal(r1.rng_state, r0.rng_state)
    assert r1.train_config == r0.train_config
    for name in ("G", "D"):
        s0, s1 = r0.optimizers[name]["state"], r1.optimizers[name]["state"]
        assert s0.keys() == s1.keys()
        for idx in s0:
            for key in s0[idx]:
                assert torch.equal(torch.as_tensor(s0[idx][key]), s1[idx][key]), (name, idx, key)


def test_file_written_by_train_equals_the_returned_model(core_trained):
    model, path = core_trained
    loaded = gan_core.load(path)
    assert torch.equal(loaded.generate("0-3"), model.generate("0-3"))
    assert loaded.resume.step == model.training["steps"] == 3


def test_save_load_save_is_stable(core_trained, tmp_path):
    _, path = core_trained
    again = gan_core.save(gan_core.load(path), tmp_path / "again.safetensors")
    meta_a, tensors_a = read_safetensors(path)
    meta_b, tensors_b = read_safetensors(again)
    assert tensors_a.keys() == tensors_b.keys()
    assert all(torch.equal(tensors_a[k], tensors_b[k]) for k in tensors_a)
    assert meta_a == meta_b


def test_inference_only_file_is_smaller_and_loads(core_trained, tmp_path):
    model, full = core_trained
    small = gan_core.save(model, tmp_path / "small.safetensors", include_resume=False)
    assert small.stat().st_size < full.stat().st_size
    loaded = gan_core.load(small)
    assert set(loaded.modules) == {"G_ema"}
    assert loaded.resume is None
    assert loaded.info()["resumable"] is False
    assert torch.equal(loaded.generate("0-7"), model.generate("0-7"))
    _, tensors = read_safetensors(small)
    assert all(k.startswith("G_ema.") for k in tensors)


def test_inference_only_file_cannot_resume(core_trained, tmp_path, core_dataset, core_config):
    model, _ = core_trained
    small = gan_core.save(model, tmp_path / "small.safetensors", include_resume=False)
    with pytest.raises(ValueError, match="no resume state"):
        gan_core.train(core_config(steps=5, seed=7), core_dataset, resume=gan_core.load(small))


def test_model_with_only_a_generator_saves_and_loads(tmp_path):
    spec = get_arch("mlp")
    cfg = spec.config_cls(image_size=8, g_hidden=(16,), d_hidden=(16,))
    torch.manual_seed(0)
    model = GANModel("mlp", cfg, {"G": spec.build(cfg)["G"]})
    path = gan_core.save(model, tmp_path / "g.safetensors", include_resume=False)
    loaded = gan_core.load(path)
    assert set(loaded.modules) == {"G"}
    assert torch.equal(loaded.generate([1, 2]), model.generate([1, 2]))


def test_metadata_describes_the_model(core_trained):
    model, path = core_trained
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["format"] == FORMAT_TAG
    assert meta["format_version"] == str(FORMAT_VERSION)
    assert meta["arch"] == "dcgan"
    assert meta["task"] == "generate"
    assert meta["gan_core_version"] == gan_core.__version__
    config = json.loads(meta["config"])
    assert config == {"image_size": 32, "channels": 3, "latent_dim": 100, "ngf": 8, "ndf": 8,
                      "max_mult": 8}
    training = json.loads(meta["training"])
    assert training["steps"] == 3 and training["seed"] == 7
    assert training["image_size"] == 32 and training["dataset_size"] == 16
    assert training["dataset"] == "builtin:mondrian"
    assert set(training["final_losses"]) == {"loss_d", "loss_g"}
    assert training["final_losses"]["loss_d"] == pytest.approx(model.resume.history["loss_d"][-1])
    resume = json.loads(meta["resume"])
    assert resume["step"] == 3
    assert resume["train_config"]["seed"] == 7
    # Tensor roles: the parts, optimiser moments, the RNG state and the loss history.
    assert {k.split(".")[0] for k in keys} == {"G", "G_ema", "D", "opt", "rng", "history"}
    assert len(json.loads(meta["resume"])["param_groups"]) == 2


def test_info_is_plain_json(core_trained):
    model, path = core_trained
    info = gan_core.load(path).info()
    text = json.dumps(info)  # plain data only
    assert json.loads(text) == info
    assert info["arch"] == "dcgan" and info["task"] == "generate"
    assert info["resumable"] is True
    assert info["source"] == str(path)
    assert info["config"]["image_size"] == 32
    assert info["training"]["steps"] == 3
    for role, module in model.modules.items():
        assert info["parameters"][role] == sum(p.numel() for p in module.parameters())
    assert info["parameters"]["G"] == info["parameters"]["G_ema"]


def test_repr_mentions_arch_and_steps(core_trained):
    model, _ = core_trained
    text = repr(model)
    assert "dcgan" in text and "steps=3" in text and "size=32" in text


# --------------------------------------------------------------------------- atomic write

def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old contents " * 100)
    before = target.read_bytes()
    new = os.urandom(4096)

    class DiskFull(OSError):
        pass

    def half_then_fail(tmp):
        with open(tmp, "wb") as fh:
            fh.write(new[: len(new) // 2])
        raise DiskFull("simulated failure half-way through the write")

    with pytest.raises(DiskFull):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]

    # Also when interrupted (BaseException, e.g. Ctrl-C) rather than failing.
    def interrupted(tmp):
        with open(tmp, "wb") as fh:
            fh.write(new[:100])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []

    # A successful write replaces the file whole.
    def write_all(tmp):
        with open(tmp, "wb") as fh:
            fh.write(new)

    assert atomic_write(target, write_all) == target
    assert target.read_bytes() == new
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_failed_save_keeps_the_previous_checkpoint(core_trained, tmp_path, monkeypatch):
    """Disk full half-way through gan_core.save: the old checkpoint survives, no debris."""
    import errno

    from gan_core.io import checkpoint

    model, path = core_trained
    target = _copy(path, tmp_path)
    before = target.read_bytes()
    real_save_file = checkpoint.save_file
    written = []

    def disk_full(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as fh:
            fh.truncate(os.path.getsize(filename) // 2)
        written.append(filename)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        gan_core.save(model, target)
    assert written and written[0] != str(target)  # it wrote a temp file, not the target
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    monkeypatch.undo()
    assert torch.equal(gan_core.load(target).generate("0-1"), model.generate("0-1"))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_saved_files_honour_the_umask(core_trained, tmp_path):
    """A checkpoint is as readable as any file the user creates (not the 0600 of a temp file)."""
    model, _ = core_trained
    old = os.umask(0o022)
    try:
        path = gan_core.save(model, tmp_path / "perm.safetensors", include_resume=False)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------- refusing bad files

def test_missing_file(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(gan_core.CheckpointError, match="does not exist") as info:
        gan_core.load(path)
    assert str(path) in str(info.value)


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(gan_core.CheckpointError, match="not a file"):
        gan_core.load(tmp_path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.touch()
    with pytest.raises(gan_core.CheckpointError, match=r"'empty\.safetensors' is empty"):
        gan_core.load(path)


@pytest.mark.parametrize("keep", [0.5, 0.9, 40])
def test_truncated_safetensors(core_trained, tmp_path, keep):
    _, path = core_trained
    raw = path.read_bytes()
    n = int(len(raw) * keep) if keep < 1 else keep
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(raw[:n])
    with pytest.raises(gan_core.CheckpointError, match=r"'cut\.safetensors'.*truncated or corrupt"):
        gan_core.load(bad)


def test_garbage_safetensors(tmp_path):
    bad = tmp_path / "noise.safetensors"
    bad.write_bytes(os.urandom(3000))
    with pytest.raises(gan_core.CheckpointError, match="noise.safetensors"):
        gan_core.load(bad)


def test_foreign_safetensors_names_file_and_describes_keys(tmp_path):
    path = tmp_path / "foreign.safetensors"
    gen = torch.Generator().manual_seed(0)
    save_file({"encoder.layer0.weight": torch.randn(4, 3, generator=gen),
               "encoder.layer0.bias": torch.randn(4, generator=gen),
               "head.proj": torch.randn(2, 4, generator=gen)}, str(path))
    with pytest.raises(gan_core.CheckpointError) as info:
        gan_core.load(path)
    msg = str(info.value)
    assert "foreign.safetensors" in msg
    assert "3 tensors" in msg
    assert "encoder.layer0.weight" in msg and "head.proj" in msg


def test_foreign_safetensors_with_other_metadata(tmp_path):
    path = tmp_path / "lora.safetensors"
    save_file({"lora_up.weight": torch.zeros(2, 2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(gan_core.CheckpointError, match="lora.safetensors.*lora_up.weight"):
        gan_core.load(path)


def test_pth_with_unknown_state_dict(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"backbone.conv.weight": torch.zeros(2, 3, 3, 3), "fc.bias": torch.zeros(2)}, path)
    with pytest.raises(gan_core.CheckpointError, match="weights.pth.*2 tensors.*backbone.conv.weight"):
        gan_core.load(path)


def test_pth_holding_a_non_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(gan_core.CheckpointError, match="list.pt.*holds a list"):
        gan_core.load(path)


class _RunsCode:
    """A pickle payload that would run a shell command if unpickled with full pickle."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _RunsCode(f"touch '{marker}'")}, path)
    with pytest.raises(gan_core.CheckpointError, match="evil.pth.*never unpickled"):
        gan_core.load(path)
    assert not marker.exists()


def test_truncated_pth(tmp_path):
    path = tmp_path / "cut.pth"
    torch.save({"w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(gan_core.CheckpointError, match="cut.pth"):
        gan_core.load(path)


def test_unsupported_extension(core_trained, tmp_path):
    _, path = core_trained
    other = _copy(path, tmp_path, "model.onnx")
    with pytest.raises(gan_core.CheckpointError, match="unsupported extension '.onnx'"):
        gan_core.load(other)


def test_mis_shaped_key_is_listed(core_trained, tmp_path):
    _, path = core_trained
    bad = _copy(path, tmp_path)

    def shrink(tensors):
        tensors["G_ema.main.0.weight"] = tensors["G_ema.main.0.weight"][:50].clone()

    _rewrite(bad, edit_tensors=shrink)
    with pytest.raises(gan_core.CheckpointError) as info:
        gan_core.load(bad)
    msg = str(info.value)
    assert "mis-shaped" in msg and "main.0.weight" in msg
    assert "(50, 32, 4, 4)" in msg and "(100, 32, 4, 4)" in msg
    assert "G_ema" in msg and "model.safetensors" in msg


def test_missing_and_unexpected_keys_are_listed(core_trained, tmp_path):
    _, path = core_trained
    bad = _copy(path, tmp_path)

    def rename(tensors):
        tensors["D.main.99.weight"] = tensors.pop("D.main.0.weight")

    _rewrite(bad, edit_tensors=rename)
    with pytest.raises(gan_core.CheckpointError, match=r"missing keys \['main.0.weight'\].*"
                                                       r"unexpected keys \['main.99.weight'\]"):
        gan_core.load(bad)


def test_file_without_generator(core_trained, tmp_path):
    _, path = core_trained
    bad = _copy(path, tmp_path)
    _rewrite(bad, edit_tensors=lambda t: [t.pop(k) for k in list(t) if k.startswith("G")])
    with pytest.raises(gan_core.CheckpointError, match="no generator weights"):
        gan_core.load(bad)


@pytest.mark.parametrize("edit,match", [
    (lambda m: m.update(format_version="99"), "format version 99"),
    (lambda m: m.update(arch="stylegan9"), "unknown architecture 'stylegan9'"),
    (lambda m: m.pop("config"), "lacks the 'config'"),
    (lambda m: m.update(config='{"image_size": 32, "ngf": 8, "ndf": 8, "extra": 1}'),
     r"does not know.*'extra'"),
    (lambda m: m.update(training="{broken"), "'training' is not JSON"),
])
def test_inconsistent_metadata(core_trained, tmp_path, edit, match):
    _, path = core_trained
    bad = _copy(path, tmp_path)
    _rewrite(bad, edit_meta=edit)
    with pytest.raises(gan_core.CheckpointError, match=match):
        gan_core.load(bad)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(gan_core.CheckpointError, ValueError)
    assert issubclass(gan_core.CheckpointError, gan_core.GanAtelierError)
