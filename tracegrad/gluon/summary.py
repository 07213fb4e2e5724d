"""`Block.summary(*inputs)`: each layer's output shape and parameter count, MXNet's table."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


def _shape_str(x: Any) -> str:
    def shapes(y: Any) -> Any:
        if isinstance(y, (list, tuple)):
            return [shapes(z) for z in y]
        return getattr(y, "shape", y)

    s = shapes(x)
    return str(s)[1:-1] if isinstance(s, list) else str(s)


def summary(block: Any, inputs: tuple) -> None:
    from .nn.basic_layers import HybridSequential, Sequential

    rows: "OrderedDict[str, dict]" = OrderedDict()
    rows["Input"] = {"shape": _shape_str(inputs if len(inputs) > 1 else inputs[0]), "n": 0, "trainable": 0,
                     "shared": 0}
    seen: set[int] = set()
    handles = []

    def hook(b: Any, _: Any, out: Any) -> None:
        key = f"{type(b).__name__}-{len(rows)}"
        row = {"shape": _shape_str(out), "n": 0, "trainable": 0, "shared": 0}
        for p in b._reg_params.values():
            n = int(p.data().size)
            row["n"] += n
            row["trainable"] += 0 if p.grad_req == "null" else n
            if id(p) in seen:
                row["shared"] += n
            seen.add(id(p))
        rows[key] = row

    def register(b: Any) -> None:
        if getattr(b, "_active", False):
            raise AssertionError(f'"{type(b).__name__}" must not be hybridized to print summary.')
        if not isinstance(b, (Sequential, HybridSequential)):
            handles.append(b.register_forward_hook(hook))

    try:
        block.apply(register)
        block(*inputs)
        fmt = "{:>20}  {:>42} {:>15}"
        print("-" * 80)
        print(fmt.format("Layer (type)", "Output Shape", "Param #"))
        print("=" * 80)
        total = trainable = shared = 0
        for name, r in rows.items():
            print(fmt.format(name, r["shape"], r["n"]))
            total += r["n"]
            trainable += r["trainable"]
            shared += r["shared"]
        print("=" * 80)
        print("Parameters in forward computation graph, duplicate included")
        print("   Total params: " + str(total))
        print("   Trainable params: " + str(trainable))
        print("   Non-trainable params: " + str(total - trainable))
        print("Shared params in forward computation graph: " + str(shared))
        print("Unique parameters in model: " + str(total - shared))
        print("-" * 80)
    finally:
        for h in handles:
            h.detach()
