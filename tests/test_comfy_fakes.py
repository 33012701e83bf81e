"""The ComfyUI fakes the node tests run on are faithful: the parts of the V3 API GAN Atelier
uses (signatures, enum values, how inputs, a node and its outputs serialise) equal a
recording of the real API of ComfyUI 0.3.64 (tests/comfy_fakes/comfy_api_0_3_64.json, made
by tests/comfy_fakes/record_api.py inside a real ComfyUI)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

FAKES = Path(__file__).resolve().parent / "comfy_fakes"


def _recorder():
    spec = importlib.util.spec_from_file_location("gan_atelier_record_api", FAKES / "record_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fake_v3_api_equals_the_recorded_real_one(comfy):
    real = json.loads((FAKES / "comfy_api_0_3_64.json").read_text())
    fake = _recorder().record()
    differing = {k: (real.get(k), fake.get(k)) for k in set(real) | set(fake)
                 if real.get(k) != fake.get(k)}
    assert not differing, json.dumps(differing, indent=1, default=str)[:4000]
