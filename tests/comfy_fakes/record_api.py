"""Record the parts of ComfyUI's V3 API (comfy_api.v0_0_2) that GAN Atelier uses: signatures,
enum values, and how sample inputs, a sample node and its outputs serialise. Run with a real
ComfyUI to refresh the snapshot the test fakes are checked against:

    cd ComfyUI && python /path/to/tests/comfy_fakes/record_api.py . > tests/comfy_fakes/comfy_api_0_3_64.json

tests/test_comfy_fakes.py runs record() on the fakes and compares.
"""
import inspect
import json
import sys


def sig(obj):
    return [[n, str(p.default) if p.default is not inspect.Parameter.empty else None]
            for n, p in inspect.signature(obj).parameters.items()]


def record() -> dict:
    """The API surface of whichever comfy_api is importable."""
    from comfy_api.v0_0_2 import ComfyExtension, io, ui
    rec = {}
    _record(rec, io, ui, ComfyExtension)
    return json.loads(json.dumps(rec, sort_keys=True, default=str))


def _record(rec, io, ui, ComfyExtension):
    for name in ["Boolean", "Int", "Float", "String", "Combo", "Image", "Mask", "Audio", "LossMap"]:
        t = getattr(io, name)
        rec[f"io.{name}.io_type"] = str(t.io_type)
        rec[f"io.{name}.Input.__init__"] = sig(t.Input.__init__)
        rec[f"io.{name}.Output.__init__"] = sig(t.Output.__init__)
    rec["io.Custom"] = sig(io.Custom)
    rec["io.Schema.fields"] = [f for f in io.Schema.__dataclass_fields__]
    rec["io.NodeOutput.__init__"] = sig(io.NodeOutput.__init__)
    rec["io.Hidden"] = {h.name: h.value for h in io.Hidden}
    rec["ui.PreviewImage.__init__"] = sig(ui.PreviewImage.__init__)
    rec["ComfyExtension.methods"] = sorted(n for n in dir(ComfyExtension) if not n.startswith("_"))
    rec["io.ComfyNode.methods"] = sorted(n for n in ["define_schema", "execute", "validate_inputs", "fingerprint_inputs", "GET_SCHEMA", "INPUT_TYPES", "PREPARE_CLASS_CLONE"] if hasattr(io.ComfyNode, n))
    # serialisation of sample inputs
    samples = {
     "int": io.Int.Input("seed", default=0, min=0, max=10, control_after_generate=True, tooltip="t"),
     "float": io.Float.Input("x", default=1.0, min=0.0, max=2.0, step=0.05, round=False, tooltip="t", optional=True),
     "string": io.String.Input("s", default="", tooltip="t"),
     "combo": io.Combo.Input("c", options=["a", "b"], default="a", tooltip="t"),
     "bool": io.Boolean.Input("b", default=True, tooltip="t"),
     "custom": io.Custom("GAN_MODEL").Input("model", tooltip="t"),
    }
    rec["as_dict"] = {k: [str(v.get_io_type()), v.as_dict()] for k, v in samples.items()}
    class N(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="N", display_name="N", category="c", description="d", inputs=list(samples.values()), outputs=[io.Image.Output(display_name="img", tooltip="o"), io.Custom("GAN_MODEL").Output(display_name="m", tooltip="o")], is_output_node=True)
        @classmethod
        def execute(cls, **kw):
            return io.NodeOutput(1, 2)
    rec["v1.INPUT_TYPES"] = N.INPUT_TYPES()
    rec["v1.RETURN_TYPES"] = [str(t) for t in N.RETURN_TYPES]
    rec["v1.RETURN_NAMES"] = list(N.RETURN_NAMES)
    rec["v1.FUNCTION"] = N.FUNCTION
    rec["v1.OUTPUT_NODE"] = N.OUTPUT_NODE
    out = N.EXECUTE_NORMALIZED()
    rec["execute_normalized"] = [type(out).__name__, list(out.args)]


if __name__ == "__main__":
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]  # not the fakes
    sys.path.insert(0, os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "."))
    print(json.dumps(record(), indent=1, sort_keys=True))
