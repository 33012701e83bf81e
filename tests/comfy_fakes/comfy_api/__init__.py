"""Stand-in for ComfyUI's comfy_api package (V3 node schema), the subset GAN Atelier uses,
with the same module layout, names, signatures and serialisation. Checked against a
recording of the real API (tests/comfy_fakes/comfy_api_0_3_64.json) by
tests/test_comfy_fakes.py."""
