"""What ComfyUI 0.3.64 does at queue time with one node's constant inputs (execution.py,
validate_inputs), for the tests: its own checks (combo options, min, max) run only for the
inputs the node's validate_inputs does NOT take (and for none at all when it takes
**kwargs); then validate_inputs gets its named inputs, None for those fed by links. Returns
the list of error messages, empty when the node would be queued."""
from __future__ import annotations

import inspect
from typing import Any

LINK = object()  # stands for an input fed by another node's output


def queue_errors(node_cls: Any, inputs: dict[str, Any]) -> list[str]:
    spec = node_cls.INPUT_TYPES()
    declared = {**spec.get("required", {}), **spec.get("optional", {})}
    validate = node_cls.__dict__.get("validate_inputs")
    takes: list[str] = []
    has_kwargs = False
    if validate is not None:
        argspec = inspect.getfullargspec(getattr(node_cls, "validate_inputs"))
        takes, has_kwargs = argspec.args, argspec.varkw is not None
    errors = []
    for name, value in inputs.items():
        if value is LINK or name in takes or has_kwargs:
            continue
        kind, *rest = declared[name]
        opts = rest[0] if rest else {}
        if "min" in opts and value < opts["min"]:
            errors.append(f"Value {value} smaller than min of {opts['min']}: {name}")
        elif "max" in opts and value > opts["max"]:
            errors.append(f"Value {value} bigger than max of {opts['max']}: {name}")
        elif kind == "COMBO" and value not in opts.get("options", []):
            errors.append(f"Value not in list: {name}: {value!r}")
    if validate is not None and (takes or has_kwargs):
        given = {k: (None if v is LINK else v) for k, v in inputs.items()
                 if k in takes or has_kwargs}
        result = node_cls.validate_inputs(**given)
        if result is not True:
            errors.append(f"Custom validation failed for node: {result}")
    return errors
