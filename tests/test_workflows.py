"""Example workflows: every UI-format file under example_workflows/ uses only nodes that
exist, with valid widget values and type-correct links, and describes the same graph as its
API-format twin in example_workflows/api/ (which is what POST /prompt accepts)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / "example_workflows").glob("*.json"))

# Inputs of the core ComfyUI nodes our examples use, as defined by ComfyUI 0.3.64
# (nodes.py SaveImage/PreviewImage/LoadImage/ImageBatch, comfy_extras/nodes_train.py LossGraphNode).
CORE_NODES = {
    "SaveImage": ({"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}}, ()),
    "PreviewImage": ({"required": {"images": ("IMAGE",)}}, ()),
    # LoadImage's combo lists ComfyUI's input folder, which ships example.png.
    "LoadImage": ({"required": {"image": (["example.png"], {"image_upload": True})}}, ("IMAGE", "MASK")),
    "ImageBatch": ({"required": {"image1": ("IMAGE",), "image2": ("IMAGE",)}}, ("IMAGE",)),
    "ImageScaleBy": ({"required": {"image": ("IMAGE",), "upscale_method": (
        ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"],), "scale_by": (
        "FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0, "step": 0.01})}}, ("IMAGE",)),
    "ImageFromBatch": ({"required": {"image": ("IMAGE",), "batch_index": ("INT", {
        "default": 0, "min": 0, "max": 4095}), "length": ("INT", {"default": 1, "min": 1,
        "max": 4096})}}, ("IMAGE",)),
    "SaveAnimatedWEBP": ({"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {
        "default": "ComfyUI"}), "fps": ("FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0,
        "step": 0.01}), "lossless": ("BOOLEAN", {"default": True}), "quality": ("INT", {
        "default": 80, "min": 0, "max": 100}), "method": (["default", "fastest", "slowest"],)}},
        ()),
    "CreateVideo": ({"required": {"images": ("IMAGE",), "fps": ("FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0, "step": 1.0})},
                     "optional": {"audio": ("AUDIO",)}}, ("VIDEO",)),
    "SaveVideo": ({"required": {"video": ("VIDEO",), "filename_prefix": ("STRING", {"default": "video/ComfyUI"}),
                                "format": (["auto", "mp4"],), "codec": (["auto", "h264"],)}}, ()),
    "LossGraphNode": ({"required": {"loss": ("LOSS_MAP", {"default": {}}),
                                    "filename_prefix": ("STRING", {"default": "loss_graph"})}}, ()),
}
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
# Frontend-only nodes: notes on the canvas, never sent to the server (not in the API twin).
VIRTUAL_NODES = {"Note": ["STRING"], "MarkdownNote": ["STRING"]}


@pytest.fixture(scope="module")
def definitions(pack):
    """node type -> (input spec, output types) for our nodes and the core ones used."""
    defs = {k: (cls.INPUT_TYPES(), cls.RETURN_TYPES) for k, cls in pack.nodes.node_classes().items()}
    defs.update(CORE_NODES)
    return defs


def _inputs(spec):
    """name -> (kind, opts); a V3 combo ("COMBO", {"options": [...]}) is given as its list of
    options, the way ComfyUI's validation reads it."""
    out = {}
    for name, (kind, *rest) in {**spec.get("required", {}), **spec.get("optional", {})}.items():
        opts = rest[0] if rest else {}
        out[name] = (opts.get("options", []) if kind == "COMBO" else kind, opts)
    return out


def _is_widget(kind) -> bool:
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _check_value(node, name, kind, opts, value):
    where = f"node {node} input {name!r}"
    if isinstance(kind, list):
        # A combo listing files (resume, model_name) is filled at run time; "none" is ours.
        assert value in kind or name in ("resume", "model_name"), f"{where}: {value!r} not in {kind}"
    elif kind == "INT":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: not an int"
        assert opts.get("min", value) <= value <= opts.get("max", value), f"{where}: out of range"
    elif kind == "FLOAT":
        assert isinstance(value, (int, float)), f"{where}: not a number"
        assert opts.get("min", value) <= value <= opts.get("max", value), f"{where}: out of range"
    elif kind == "STRING":
        assert isinstance(value, str), f"{where}: not a string"
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), f"{where}: not a boolean"


def ui_to_api(ui: dict, definitions: dict) -> dict:
    """Convert a UI-format workflow to API format the way the frontend does for our inputs:
    widget values in declaration order (skipping the control_after_generate entry after a
    seed), socket inputs from links. A workflow saved before a trailing optional input was
    added has no value for it; the frontend gives it its default, which the server also
    applies when the input is absent."""
    links = {l[0]: l for l in ui["links"]}
    api = {}
    for n in ui["nodes"]:
        if n["type"] in VIRTUAL_NODES:
            assert [type(v).__name__.upper().replace("STR", "STRING") for v in
                    n.get("widgets_values", [])] == VIRTUAL_NODES[n["type"]]
            assert not n.get("inputs") and not n.get("outputs"), "a note has no sockets"
            continue
        spec, _ = definitions[n["type"]]
        values = list(n.get("widgets_values", []))
        inputs = {}
        linked = {i["name"]: i["link"] for i in n.get("inputs", []) if i.get("link") is not None}
        for name, (kind, *rest) in _inputs(spec).items():
            opts = rest[0] if rest else {}
            if _is_widget(kind):
                if not values and name in spec.get("optional", {}):
                    continue  # saved before this optional input existed: its default applies
                assert values, f"node {n['id']} ({n['type']}) has too few widget values"
                value = values.pop(0)
                if opts.get("control_after_generate"):
                    assert values and values.pop(0) in ("fixed", "randomize", "increment", "decrement")
                if name not in linked:  # a widget fed by a link keeps a stale value
                    inputs[name] = value
            if name in linked:
                link = links[linked[name]]
                inputs[name] = [str(link[1]), link[2]]
        assert not values, f"node {n['id']} ({n['type']}) has extra widget values {values}"
        api[str(n["id"])] = {"class_type": n["type"], "inputs": inputs}
    return api


def test_there_are_example_workflows_with_twins_and_thumbnails():
    assert WORKFLOWS, "no example workflows"
    for path in WORKFLOWS:
        assert (REPO / "example_workflows" / "api" / path.name).is_file(), f"{path.name} has no API twin"
        assert path.with_suffix(".jpg").is_file(), f"{path.name} has no thumbnail"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_ui_workflow_is_valid_and_matches_its_api_twin(path, definitions):
    ui = json.loads(path.read_text())
    nodes = {n["id"]: n for n in ui["nodes"]}
    for n in ui["nodes"]:
        assert n["type"] in definitions or n["type"] in VIRTUAL_NODES, f"unknown node type {n['type']}"
    for link_id, src, src_slot, dst, dst_slot, kind in ui["links"]:
        out_types = definitions[nodes[src]["type"]][1]
        assert out_types[src_slot] == kind, f"link {link_id}: source slot is {out_types[src_slot]}, link says {kind}"
        target_input = nodes[dst]["inputs"][dst_slot]
        assert target_input["link"] == link_id and target_input["type"] == kind
        assert link_id in nodes[src]["outputs"][src_slot]["links"]
    api = json.loads((REPO / "example_workflows" / "api" / path.name).read_text())
    converted = ui_to_api(ui, definitions)
    assert converted == {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api.items()}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_api_workflow_inputs_are_complete_and_in_range(path, definitions):
    api = json.loads((REPO / "example_workflows" / "api" / path.name).read_text())
    for node_id, node in api.items():
        spec, _ = definitions[node["class_type"]]
        for name, (kind, *rest) in _inputs(spec).items():
            if name not in node["inputs"]:
                assert name in spec.get("optional", {}), f"node {node_id}: required {name!r} missing"
                continue
            value = node["inputs"][name]
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                src = api[value[0]]
                assert definitions[src["class_type"]][1][value[1]] == kind, f"node {node_id}.{name}: wrong type"
            else:
                assert _is_widget(kind), f"node {node_id}.{name}: a {kind} socket given a constant"
                _check_value(node_id, name, kind, rest[0] if rest else {}, value)
        unknown = set(node["inputs"]) - set(_inputs(spec))
        assert not unknown, f"node {node_id} has unknown inputs {unknown}"


def test_the_stylegan_template_runs_on_a_pickle_in_models_gan(node_env, pack):
    """example_workflows/stylegan_pkl.json, unedited, on a tiny StyleGAN3 network pickle this
    test writes under the name the template gives: a seed grid and a camera-pan walk."""
    import sys

    from PIL import Image

    sys.path.insert(0, str(REPO / "tests"))
    from comfy_graph import run_workflow
    from nvidia_models import write_tiny_stylegan3

    fp, _, _ = node_env
    api = json.loads((REPO / "example_workflows" / "api" / "stylegan_pkl.json").read_text())
    name = api["1"]["inputs"]["model_name"]
    gan = Path(fp.get_folder_paths("gan")[0])
    gan.mkdir(parents=True, exist_ok=True)
    write_tiny_stylegan3(gan / name, seed=3, margin_size=10)
    out = run_workflow(pack, fp, api)
    (grid_file,) = out["4"]["files"]
    with Image.open(grid_file) as grid:
        assert grid.size == (3 * 32 + 4 * 4, 3 * 32 + 4 * 4)
    (webp,) = out["6"]["files"]
    with Image.open(webp) as anim:
        assert anim.n_frames > 1  # (the encoder merges repeated frames into longer ones)
    frames, fps = out["5"]
    assert fps > 0 and frames.shape == (48, 32, 32, 3)
    # the walk's first frame is seed 0's picture in the grid (camera at home), the middle one
    # has moved with the camera
    model = out["1"][0]
    torch.testing.assert_close(frames[:1], model.generate([0], truncation=0.7), atol=1e-5, rtol=0)
    assert float((frames[24] - model.generate([1], truncation=0.7)[0]).abs().mean()) > 0.0
