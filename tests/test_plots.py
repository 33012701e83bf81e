"""Loss plots: which curves the default picks, and that each picked curve is drawn."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import gan_core
from gan_core.plots import PALETTE


def _history(n: int = 200) -> dict[str, list[float]]:
    t = np.linspace(0, 1, n)
    return {
        "loss": list(1.0 + 0.2 * np.sin(9 * t)),
        "loss_d": list(1.0 + 0.2 * np.sin(9 * t)),
        "loss_g": list(2.0 - t),
        "psnr": list(20 + 10 * t),  # dB: on the loss axis it would flatten the losses
        "lr": [2e-4] * n,
        "p": list(0.6 * t),
    }


def test_default_curves_are_the_losses_and_ada_p():
    assert sorted(gan_core.pick_curves(_history())) == ["loss_d", "loss_g", "p"]
    # named curves are honoured, even non-losses
    assert sorted(gan_core.pick_curves(_history(), ["psnr"])) == ["psnr"]
    with pytest.raises(ValueError, match=r"curves: \['loss_x'\] not in the loss map; it has"):
        gan_core.pick_curves(_history(), ["loss_x"])
    # core's single-curve map still plots
    assert list(gan_core.pick_curves({"loss": [1.0, 2.0]})) == ["loss"]


def _colour_pixels(image: torch.Tensor, colour: tuple[int, int, int]) -> int:
    rgb = (image[0] * 255).round().to(torch.int16)
    return int(((rgb - torch.tensor(colour, dtype=torch.int16)).abs().sum(-1) <= 6).sum())


def test_default_plot_spreads_the_losses_over_the_axis():
    """With psnr on the axis, loss_d's sine wave would span about 1% of the height; left out, it
    fills a visible band. Measured as the rows loss_d's colour reaches."""
    history = _history()
    image = gan_core.plot_losses(gan_core.pick_curves(history), 480, 240, smoothing=0.0)
    assert image.shape == (1, 240, 480, 3)
    names = sorted(k for k in gan_core.pick_curves(history) if k not in ("p",))
    rows = {}
    for index, name in enumerate(names):
        colour = PALETTE[index % len(PALETTE)]
        rgb = (image[0] * 255).round().to(torch.int16)
        hit = ((rgb - torch.tensor(colour, dtype=torch.int16)).abs().sum(-1) <= 6).any(dim=1)
        rows[name] = int(hit.sum())
        assert _colour_pixels(image, colour) > 50, name
    flattened = gan_core.plot_losses({k: history[k] for k in ("loss_d", "loss_g", "psnr")},
                                     480, 240, smoothing=0.0)
    rgb = (flattened[0] * 255).round().to(torch.int16)
    flat_rows = int(((rgb - torch.tensor(PALETTE[0], dtype=torch.int16)).abs().sum(-1) <= 6)
                    .any(dim=1).sum())
    assert rows["loss_d"] > 3 * flat_rows


def test_plot_node_draws_a_trainers_loss_map(node_env, pack):
    cls = pack.nodes.node_classes()["GANAtelierPlotLosses"]
    (image,) = cls().EXECUTE_NORMALIZED(loss=_history(), curves="", smoothing=0.02,
                                        width=320, height=160)
    assert image.shape == (1, 160, 320, 3) and float(image.min()) >= 0 and float(image.max()) <= 1
    with pytest.raises(ValueError, match="curves"):
        cls().EXECUTE_NORMALIZED(loss=_history(), curves="nope", smoothing=0.0, width=320,
                                 height=160)
