"""Names typed into nodes stay inside ComfyUI's folders (SECURITY.md, "Paths from node inputs").

Every node input that names a file or folder is a row of NAME_INPUTS: (node, input, kind),
kind saying which folder the name lives in. Each row is tried with every hostile spelling in
HOSTILE ('..' in its forms, absolute POSIX and Windows paths, drive letters, UNC, NUL bytes, and
symlinks inside the folder that point outside): the node must refuse with a ValueError naming
the input, and nothing outside the folders may be opened, listed or written. A Python audit
hook records every file the process opens, lists, creates, renames or removes while a node
runs; the tree outside ComfyUI's folders is also compared before and after.

A new node that takes a name adds a row here; test_every_name_input_is_in_the_table fails until
it does (inputs that are not names, like a noise recipe, go in NOT_NAMES with the reason).
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths and symlinks")

# ----------------------------------------------------------------------------- the table

MODEL, PREFIX, INPUT = "model file in models/gan", "save prefix in models/gan", "input folder"

NAME_INPUTS = [
    ("GANAtelierLoadModel", "model_name", MODEL),
    ("GANAtelierSaveModel", "filename_prefix", PREFIX),
    ("GANAtelierTrain", "filename_prefix", PREFIX),
    ("GANAtelierTrain", "folder", INPUT),
    ("GANAtelierTrain", "resume", MODEL),
    ("GANAtelierTrainDenoiser", "filename_prefix", PREFIX),
    ("GANAtelierTrainDenoiser", "folder", INPUT),
    ("GANAtelierTrainDenoiser", "resume", MODEL),
    ("GANAtelierTrainStyle", "filename_prefix", PREFIX),
    ("GANAtelierTrainStyle", "content_folder", INPUT),
    ("GANAtelierTrainStyle", "style_folder", INPUT),
    ("GANAtelierTrainStyle", "resume", MODEL),
]

NOT_NAMES = {
    ("GANAtelierAddNoise", "recipe"): "a noise recipe, parsed by gan_core.parse_recipe",
    ("GANAtelierTrainDenoiser", "noise"): "a noise recipe, parsed by gan_core.parse_recipe",
    ("GANAtelierLatentWalk", "seeds"): "a list of seeds, parsed by gan_core.parse_seeds",
    ("GANAtelierPlotLosses", "curves"): "names of curves in the loss map",
    ("GANAtelierAudioReactiveWalk", "seeds"): "a list of seeds, parsed by gan_core.parse_seeds",
}

# Each spelling, given the test tree (see `tree`): the value typed into the input.
# SECRET lies beside ComfyUI's base folder and holds a valid model, images and a folder.
HOSTILE = {
    "dot-dot": lambda t, kind: {MODEL: "../../../secret/model.safetensors",
                                PREFIX: "../../../secret/run", INPUT: "../../secret/imgs"}[kind],
    "dot-dot in the middle": lambda t, kind: "sub/../../../../secret/" + t.leaf[kind],
    "backslash dot-dot": lambda t, kind: "..\\..\\..\\secret\\" + t.leaf[kind],
    "absolute": lambda t, kind: str(t.secret / t.leaf[kind]),
    "absolute, doubled slash": lambda t, kind: "//" + str(t.secret / t.leaf[kind]).lstrip("/"),
    "Windows drive": lambda t, kind: "C:\\secret\\" + t.leaf[kind],
    "Windows drive-relative": lambda t, kind: "C:" + t.leaf[kind],
    "UNC share": lambda t, kind: "\\\\server\\share\\" + t.leaf[kind],
    "NUL byte": lambda t, kind: t.leaf[kind] + "\x00.png",
    "symlinked folder": lambda t, kind: "link/" + t.leaf[kind],
    "symlinked file": lambda t, kind: {MODEL: "alias.safetensors", PREFIX: "link/run",
                                       INPUT: "alias_imgs"}[kind],
}

# ----------------------------------------------------------------------------- the audit

_RECORD: list[tuple[str, str]] | None = None
_EVENTS = ("open", "os.listdir", "os.scandir", "os.mkdir", "os.rename", "os.remove", "os.rmdir",
           "os.symlink", "os.link", "os.truncate", "os.chmod", "os.utime", "shutil.copyfile",
           "shutil.move", "shutil.rmtree")


def _audit(event: str, args: tuple) -> None:
    if _RECORD is None or event not in _EVENTS:
        return
    for arg in args[:2]:
        if isinstance(arg, (str, bytes, os.PathLike)):
            try:
                _RECORD.append((event, os.fsdecode(arg)))
            except (TypeError, ValueError):
                pass


_HOOKED = False


def _touched(fn) -> tuple[list[tuple[str, str]], BaseException | None]:
    """Run fn(), returning the paths it opened/listed/wrote and the exception it raised."""
    global _RECORD, _HOOKED
    if not _HOOKED:  # an audit hook cannot be removed: install one for the whole session
        sys.addaudithook(_audit)
        _HOOKED = True
    _RECORD = []
    try:
        fn()
        raised = None
    except Exception as exc:  # noqa: BLE001 - the caller inspects it
        raised = exc
    finally:
        seen, _RECORD = _RECORD, None
    return seen, raised


def _inside(path: str, folder: Path) -> bool:
    try:
        real = os.path.realpath(path.split("\x00")[0])
    except ValueError:
        return False
    return real == str(folder) or real.startswith(str(folder) + os.sep)


def _snapshot(root: Path) -> dict[str, str]:
    """Every entry under root (symlinks not followed): its kind and content hash."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p.is_symlink():
                out[str(p)] = "link->" + os.readlink(p)
            elif p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[str(p)] = "dir"
    return out


# ----------------------------------------------------------------------------- the tree

class Tree:
    """tmp/comfy (ComfyUI's base: models/gan, input, output) and tmp/secret beside it."""

    def __init__(self, base: Path, secret: Path, gan: Path, inputs: Path):
        self.base, self.secret, self.gan, self.inputs = base, secret, gan, inputs
        self.leaf = {MODEL: "model.safetensors", PREFIX: "run", INPUT: "imgs"}


@pytest.fixture
def tree(comfy, pack, tmp_path, core_single_thread):
    fp, utils, mm = comfy
    base, secret = tmp_path / "comfy", tmp_path / "secret"
    fp.configure(str(base))
    pack.nodes.bridge.register_model_folder()
    gan = Path(fp.get_folder_paths("gan")[0])
    gan.mkdir(parents=True)
    inputs = Path(fp.get_input_directory())
    # What an escape would reach: a loadable model (also a resumable one per trainer) and images.
    secret.mkdir()
    gc = pack.gan_core
    spec = gc.get_arch("dcgan")
    cfg = spec.config_cls(image_size=32, ngf=8, ndf=8)
    torch.manual_seed(0)
    gc.save(gc.GANModel("dcgan", cfg, {"G": spec.build(cfg)["G"]}), secret / "model.safetensors",
            include_resume=False)
    (secret / "imgs").mkdir()
    from PIL import Image
    for i in range(3):
        Image.new("RGB", (40, 40), (80 * i, 10, 200)).save(secret / "imgs" / f"s{i}.png")
    # Links placed inside ComfyUI's folders, pointing out (what a careless upload could leave).
    for folder in (gan, inputs):
        os.symlink(secret, folder / "link")
    os.symlink(secret / "model.safetensors", gan / "alias.safetensors")
    os.symlink(secret / "imgs", inputs / "alias_imgs")
    mm.interrupt_current_processing(False)
    utils.set_progress_bar_global_hook(None)
    return Tree(base, secret, gan, inputs)


# Cheap valid inputs per node; the row's input is then replaced by the hostile value.
def _base_inputs(node_id: str, gc) -> dict:
    with torch.inference_mode():
        images = torch.rand(2, 40, 40, 3)
    common = dict(steps=1, seed=0, preview_every=0, checkpoint_every=0)
    if node_id == "GANAtelierLoadModel":
        return {"model_name": "x.safetensors"}
    if node_id == "GANAtelierSaveModel":
        spec = gc.get_arch("dcgan")
        cfg = spec.config_cls(image_size=32, ngf=8, ndf=8)
        model = gc.GANModel("dcgan", cfg, {"G": spec.build(cfg)["G"]})
        return dict(model=model, filename_prefix="ok/run", include_training_state=False)
    if node_id == "GANAtelierTrain":
        return dict(common, arch="dcgan", builtin_dataset="blobs", resolution=32, width=8,
                    batch_size=2, learning_rate=2e-4, loss="bce", augmentation="none",
                    r1_gamma=0.0, filename_prefix="ok/gan", images=images)
    if node_id == "GANAtelierTrainDenoiser":
        return dict(common, noise="gaussian:25", builtin_dataset="mondrian", resolution=32,
                    width=8, batch_size=2, adversarial_weight=0.0, learning_rate=1e-3, loss="l1",
                    filename_prefix="ok/den", images=images)
    if node_id == "GANAtelierTrainStyle":
        return dict(common, content_builtin="blobs", style_builtin="painting", resolution=32,
                    width=4, blocks=1, batch_size=1, learning_rate=2e-4, cycle_weight=10.0,
                    identity_weight=0.5, augmentation="none", filename_prefix="ok/style",
                    content_images=images, style_images=images)
    raise KeyError(node_id)


def _with(inputs: dict, name: str, value: str) -> dict:
    out = dict(inputs, **{name: value})
    # A folder is only read when no IMAGE input takes precedence over it.
    drop = {"folder": "images", "content_folder": "content_images",
            "style_folder": "style_images"}.get(name)
    out.pop(drop, None)
    return out


def _call(pack, node_id: str, inputs: dict):
    obj = pack.nodes.node_classes()[node_id]()
    with torch.inference_mode():
        return getattr(obj, obj.FUNCTION)(**inputs)


def _check_refused(tree, seen, raised, snap, input_name, what):
    assert raised is not None, f"{what}: the node accepted it"
    assert isinstance(raised, ValueError), f"{what}: {raised!r}"
    assert input_name in str(raised), f"{what}: the error does not name the input: {raised}"
    outside = [(e, p) for e, p in seen if _inside(p, tree.secret)]
    assert outside == [], f"{what}: touched outside: {outside}"
    assert _snapshot(tree.secret) == snap["secret"], f"{what}: the secret folder changed"
    assert _snapshot(tree.base) == snap["base"], f"{what}: something was written"


# ----------------------------------------------------------------------------- the tests

@pytest.mark.parametrize("node_id,input_name,kind", NAME_INPUTS,
                         ids=[f"{n}.{i}" for n, i, _ in NAME_INPUTS])
def test_hostile_names_are_refused_and_nothing_outside_is_touched(tree, pack, node_id,
                                                                  input_name, kind):
    base = _base_inputs(node_id, pack.gan_core)
    snap = {"secret": _snapshot(tree.secret), "base": _snapshot(tree.base)}
    for spelling, make in HOSTILE.items():
        value = make(tree, kind)
        seen, raised = _touched(lambda: _call(pack, node_id, _with(base, input_name, value)))
        _check_refused(tree, seen, raised, snap, input_name,
                       f"{node_id}.{input_name} = {value!r} ({spelling})")


@pytest.mark.parametrize("node_id,input_name,kind",
                         [r for r in NAME_INPUTS if r[1] != "filename_prefix"],
                         ids=[f"{n}.{i}" for n, i, _ in NAME_INPUTS if i != "filename_prefix"])
def test_is_changed_never_looks_outside(tree, pack, node_id, input_name, kind):
    """ComfyUI calls IS_CHANGED before running a node: with a hostile name it must neither
    read nor list outside, and its value must not follow the outside files."""
    cls = pack.nodes.node_classes()[node_id]
    for n, (spelling, make) in enumerate(HOSTILE.items()):
        value = make(tree, kind)
        seen, raised = _touched(lambda: cls.fingerprint_inputs(**{input_name: value}))
        assert raised is None, f"{spelling}: IS_CHANGED raised {raised!r}"
        key = cls.fingerprint_inputs(**{input_name: value})
        assert [p for _, p in seen if _inside(p, tree.secret)] == [], spelling
        os.utime(tree.secret / "model.safetensors", ns=(1, 10**18 + n))  # a new mtime each time
        (tree.secret / "imgs" / "new.png").write_bytes((tree.secret / "imgs" / "s0.png").read_bytes())
        assert cls.fingerprint_inputs(**{input_name: value}) == key, f"{spelling}: follows outside files"
        (tree.secret / "imgs" / "new.png").unlink()


def test_the_audit_sees_reads_and_writes_inside(tree, pack):
    """The checks above would catch an escape: the same machinery records a legitimate load
    (an open inside models/gan) and save (a file created there)."""
    base = _base_inputs("GANAtelierSaveModel", pack.gan_core)
    seen, raised = _touched(lambda: _call(pack, "GANAtelierSaveModel", base))
    assert raised is None
    assert any(_inside(p, tree.gan) for e, p in seen if e == "open")
    name = "ok/run_00001_.safetensors"
    seen, raised = _touched(lambda: _call(pack, "GANAtelierLoadModel", {"model_name": name}))
    assert raised is None and any(_inside(p, tree.gan) for e, p in seen if e == "open")
    # and a name that is legal but unusual still works: dots inside a name are not '..'
    os.rename(tree.gan / name, tree.gan / "ok" / "my..model.safetensors")
    model, _ = _call(pack, "GANAtelierLoadModel", {"model_name": "ok/my..model.safetensors"})
    assert model.arch == "dcgan"


def test_every_name_input_is_in_the_table(tree, pack):
    """Every STRING input and every input choosing from models/gan is a row of NAME_INPUTS or
    listed in NOT_NAMES: a node added later cannot skip these tests unnoticed."""
    (tree.gan / "probe.safetensors").write_bytes(b"")
    rows = {(n, i) for n, i, _ in NAME_INPUTS}
    found = set()
    for node_id, cls in pack.nodes.node_classes().items():
        spec = cls.INPUT_TYPES()
        for name, (kind, *rest) in {**spec.get("required", {}), **spec.get("optional", {})}.items():
            if kind == "COMBO":  # V3 combos carry their options in the input's dict
                kind = rest[0].get("options", [])
            if kind == "STRING" or (isinstance(kind, list) and "probe.safetensors" in kind):
                found.add((node_id, name))
    assert found - rows - set(NOT_NAMES) == set(), "name inputs missing from NAME_INPUTS"
    assert rows - found == set(), "rows for inputs that no longer exist"
