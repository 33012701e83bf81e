"""Run an API-format workflow (what POST /prompt takes) the way ComfyUI's executor does, for the
tests: nodes in dependency order, links resolved to the outputs they name, every node called in
inference mode, absent optional inputs left to the node's defaults. The pack's nodes run for
real; the few core nodes the templates use are small stand-ins with ComfyUI 0.3.64's input
names and output files (SaveImage: numbered PNGs; SaveAnimatedWEBP: one animated WEBP)."""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from PIL import Image


def _save_name(fp, prefix: str, suffix: str) -> str:
    folder, stem, counter, _, _ = fp.get_save_image_path(prefix, fp.get_output_directory())
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{stem}_{counter:05}_{suffix}")


def _pictures(images: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray((i.clamp(0, 1).numpy() * 255).round().astype(np.uint8)) for i in images]


def core_nodes(fp) -> dict[str, Any]:
    def save_image(images, filename_prefix="ComfyUI"):
        files = []
        for picture in _pictures(images):
            path = _save_name(fp, filename_prefix, ".png")
            picture.save(path)
            files.append(path)
        return {"files": files}

    def save_webp(images, filename_prefix, fps, lossless, quality, method):
        path = _save_name(fp, filename_prefix, ".webp")
        first, *rest = _pictures(images)
        first.save(path, save_all=True, append_images=rest, duration=int(1000.0 / fps),
                   lossless=lossless, quality=quality, method={"default": 4, "fastest": 0,
                                                               "slowest": 6}[method])
        return {"files": [path]}

    def scale_by(image, upscale_method, scale_by):
        h, w = round(image.shape[1] * scale_by), round(image.shape[2] * scale_by)
        mode = {"nearest-exact": "nearest-exact", "bilinear": "bilinear", "area": "area",
                "bicubic": "bicubic"}[upscale_method]
        out = torch.nn.functional.interpolate(image.movedim(-1, 1), size=(h, w), mode=mode)
        return (out.movedim(1, -1),)

    def batch(image1, image2):
        if image2.shape[1:3] != image1.shape[1:3]:
            image2 = scale_by(image2, "bilinear", 1.0)[0]
            image2 = torch.nn.functional.interpolate(image2.movedim(-1, 1), size=image1.shape[1:3],
                                                     mode="bilinear").movedim(1, -1)
        return (torch.cat([image1, image2]),)

    return {"SaveImage": save_image, "SaveAnimatedWEBP": save_webp, "ImageScaleBy": scale_by,
            "ImageBatch": batch, "PreviewImage": lambda images: {"files": []}}


def run_workflow(pack, fp, api: dict[str, dict]) -> dict[str, Any]:
    """node id -> its outputs (a tuple, or the saver's {"files": [...]})."""
    classes = pack.nodes.node_classes()
    core = core_nodes(fp)
    done: dict[str, Any] = {}

    def value(v):
        if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str):
            return evaluate(v[0])[v[1]]
        return v

    def evaluate(node_id: str):
        if node_id not in done:
            node = api[node_id]
            inputs = {k: value(v) for k, v in node["inputs"].items()}
            kind = node["class_type"]
            with torch.inference_mode():
                if kind in classes:
                    out = classes[kind]().EXECUTE_NORMALIZED(**inputs)
                    done[node_id] = tuple(out.args) if hasattr(out, "args") else tuple(out)
                else:
                    done[node_id] = core[kind](**inputs)
        return done[node_id]

    for node_id in api:
        evaluate(node_id)
    return done
