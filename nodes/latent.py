"""Latent nodes: walks between seeds, image inversion, generation from a latent (with
variations) and style mixing. The work is gan_core's; these wrap it with ComfyUI's progress,
cancel and device."""
from __future__ import annotations

import logging

import torch

from .. import gan_core
from . import bridge, widgets
from .bridge import GAN_LATENT, io

log = logging.getLogger("gan_atelier")


def _require_generator(model) -> None:
    if model.task != "generate":
        raise ValueError(f"model: expected a generator, got a {model.task!r} model ({model.arch})")


def _callbacks(progress: bridge.Progress, offset: int = 0, preview: bool = False):
    """Progress (shifted by `offset` for batches) and ComfyUI's cancel, as gan_core hooks."""
    return gan_core.TrainCallbacks(
        on_step=lambda done, losses: progress.update(offset + done),
        on_preview=(lambda step, image: progress.update(offset + step, image)) if preview else None,
        check_stop=bridge.check_interrupt,
    )


class GANAtelierLatentWalk(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierLatentWalk",
            display_name="Latent Walk (GAN Atelier)",
            category="GAN Atelier/latent",
            description="Animate a generator: frames that travel through latent space from seed "
                        "to seed (e.g. 1,5,9) and, looped, back to the first, seamlessly. Feed "
                        "the frames and the fps output to Save Animated WEBP or Create Video.",
            inputs=[
                widgets.model(),
                io.String.Input("seeds", default="1,5,9",
                                tooltip="the seeds to visit in order, e.g. 1,5,9 (ranges like "
                                        "3-6 work too); at least two stops in all, counting "
                                        "each code of a connected latent (then this may be "
                                        "empty)"),
                io.Int.Input("frames", default=48, min=2, max=4096,
                             tooltip="total number of frames in the animation"),
                io.Combo.Input("mode", options=list(gan_core.INTERPOLATION_MODES), default="auto",
                               tooltip="auto: spherical in z for plain GANs, linear in w for "
                                       "StyleGAN (each model's best practice); or force one"),
                io.Combo.Input("easing", options=list(gan_core.EASINGS), default="linear",
                               tooltip="speed along each seed-to-seed move: linear = constant; "
                                       "ease_in_out = slows down at every seed"),
                io.Boolean.Input("loop", default=True,
                                 tooltip="return to the first seed so the animation repeats "
                                         "without a jump (no frame is repeated at the seam)"),
                widgets.truncation("below 1 pulls every frame toward the average image",
                                   optional=True),
                GAN_LATENT.Input("latent", optional=True,
                                 tooltip="optional start (from Invert Image): the walk begins at "
                                         "this latent, then visits the seeds"),
                widgets.class_index(),
                widgets.camera("camera_pan_x", "how far the camera travels right over the "
                               "walk, in image widths (a loop goes there and back)", 4.0, 0.01),
                widgets.camera("camera_pan_y", "how far the camera travels down over the walk, "
                               "in image heights", 4.0, 0.01),
                widgets.camera("camera_rotate", "how many degrees the camera turns over the "
                               "walk", 360.0, 1.0),
            ],
            outputs=[io.Image.Output(display_name="frames", tooltip="the animation frames, RGB"),
                     io.Float.Output(display_name="fps",
                                     tooltip="a frame rate that shows each seed-to-seed move in "
                                             "about two seconds (6-24 fps)")],
        )

    @classmethod
    def execute(cls, model, seeds, frames, mode, easing, loop, truncation=1.0,
                latent=None, class_index=-1, camera_pan_x=0.0, camera_pan_y=0.0,
                camera_rotate=0.0) -> io.NodeOutput:
        _require_generator(model)
        # A connected latent's codes are stops of their own: two of them need no seed.
        given = latent is None or str(seeds).strip()
        stops = gan_core.parse_seeds(seeds) if given else []
        if latent is not None:
            stops = [latent, *stops]
        progress = bridge.Progress(frames)
        with bridge.lend_device(model) as device:
            result = gan_core.walk(model, stops, frames, mode=mode, easing=easing, loop=loop,
                                   truncation=truncation, device=device,
                                   callbacks=_callbacks(progress), class_index=class_index,
                                   camera_pan=(camera_pan_x, camera_pan_y),
                                   camera_rotate=camera_rotate)
        return io.NodeOutput(result.images, result.fps)


class GANAtelierInvertImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierInvertImage",
            display_name="Invert Image (GAN Atelier)",
            category="GAN Atelier/latent",
            description="Find the latent whose generated image best matches your image (GAN "
                        "inversion). Outputs the latent for Generate From Latent or Style Mix, "
                        "the reconstruction and its PSNR. Images are fitted to the model's "
                        "size; each image of a batch is inverted on its own.",
            inputs=[
                widgets.model(),
                io.Image.Input("image", tooltip="the picture(s) to reproduce; centre-cropped to "
                                                "square and resized to the model's size"),
                io.Int.Input("steps", default=300, min=1, max=10000,
                             tooltip="optimisation steps per image: more = closer match, slower"),
                io.Combo.Input("space", options=list(gan_core.INVERT_SPACES), default="auto",
                               tooltip="z: the input noise (most editable); w: after StyleGAN's "
                                       "mapping network; w+: one w per layer (closest match, "
                                       "less editable); auto: w for StyleGAN, else z"),
                widgets.seed("seeds the starting candidates (seed, seed+1, ...)"),
                io.Float.Input("learning_rate", default=0.05, min=1e-4, max=1.0, step=0.005,
                               optional=True, tooltip="Adam step size on the latent"),
                widgets.class_index(),
            ],
            outputs=[GAN_LATENT.Output(display_name="latent",
                                       tooltip="one latent code per input image"),
                     io.Image.Output(display_name="reconstruction",
                                     tooltip="the generator's image of each latent, at the "
                                             "model's size"),
                     io.Float.Output(display_name="psnr",
                                     tooltip="mean PSNR (dB) of the reconstructions against the "
                                             "fitted inputs")],
        )

    @classmethod
    def execute(cls, model, image, steps, space, seed, learning_rate=0.05,
                class_index=-1) -> io.NodeOutput:
        _require_generator(model)
        images = gan_core.check_image_batch(image, "image")
        progress = bridge.Progress(steps * len(images))
        latents, recons, scores = [], [], []
        with bridge.lend_device(model) as device:
            for i in range(len(images)):
                result = gan_core.invert(
                    model, images[i:i + 1], steps=steps, space=space, lr=learning_rate,
                    seed=seed, device=device, preview_every=max(1, steps // 10),
                    class_index=class_index,
                    callbacks=_callbacks(progress, offset=i * steps, preview=True))
                latents.append(result.latent)
                recons.append(result.image)
                scores.append(result.psnr)
                log.info("GAN Atelier: inverted image %d/%d in %s, PSNR %.2f dB",
                         i + 1, len(images), result.latent.space, result.psnr)
        return io.NodeOutput(gan_core.GANLatent.cat(latents), torch.cat(recons),
                             float(sum(scores) / len(scores)))


class GANAtelierGenerateFromLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierGenerateFromLatent",
            display_name="Generate From Latent (GAN Atelier)",
            category="GAN Atelier/latent",
            description="Generate images from a latent (from Invert Image): the latent's own "
                        "image, or variations around it. Variation strength 0 repeats the "
                        "source; 1 gives unrelated images.",
            inputs=[
                widgets.model("the generator the latent was made for"),
                GAN_LATENT.Input("latent", tooltip="latent codes from Invert Image"),
                io.Int.Input("count", default=1, min=1, max=4096, tooltip="images per latent code"),
                io.Float.Input("variation_strength", default=0.0, min=0.0, max=1.0, step=0.05,
                               tooltip="how far each image moves from the latent toward a "
                                       "random one: 0 = the latent itself"),
                widgets.seed("seeds the variations (image j of code i uses seed + i * count + j)"),
                widgets.truncation("below 1 pulls the images toward the average image",
                                   optional=True),
                widgets.class_index(),
            ],
            outputs=[io.Image.Output(display_name="images",
                                     tooltip="count images per latent code, grouped by code")],
        )

    @classmethod
    def execute(cls, model, latent, count, variation_strength, seed,
                truncation=1.0, class_index=-1) -> io.NodeOutput:
        _require_generator(model)
        with bridge.lend_device(model) as device:
            if count > 1 or variation_strength > 0:
                latent = gan_core.variations(model, latent, count, variation_strength, seed=seed,
                                             device=device, class_index=class_index)
            progress = bridge.Progress(len(latent))
            images = gan_core.generate_from_latent(model, latent, truncation=truncation,
                                                   device=device, callbacks=_callbacks(progress),
                                                   class_index=class_index)
        return io.NodeOutput(images)


class GANAtelierStyleMix(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierStyleMix",
            display_name="Style Mix (GAN Atelier)",
            category="GAN Atelier/latent",
            description="StyleGAN style mixing: an image whose coarse (pose, shape), middle "
                        "(features) or fine (colour, texture) layers take their style from "
                        "another seed. Needs a generator with per-layer styles; others give a "
                        "clear error.",
            inputs=[
                widgets.model("a StyleGAN generator from Load GAN Model"),
                widgets.seed("the source image's seed (ignored when latent is connected)"),
                io.Int.Input("mix_seed", default=1, min=0, max=gan_core.MAX_SEED,
                             tooltip="the seed whose style replaces the chosen layers"),
                io.Combo.Input("layers", options=list(gan_core.STYLE_LAYERS), default="coarse",
                               tooltip="which layers take the mix seed's style: coarse = 4-8 px "
                                       "(pose, shape), middle = 16-32 px (features), fine = "
                                       "64 px and up (colour, texture)"),
                GAN_LATENT.Input("latent", optional=True,
                                 tooltip="a source latent (from Invert Image) used instead of "
                                         "the seed"),
                widgets.truncation("below 1 pulls both styles toward the average", optional=True),
                widgets.class_index(),
            ],
            outputs=[io.Image.Output(display_name="images",
                                     tooltip="the mixed image (one per latent code when a latent "
                                             "is connected)")],
        )

    @classmethod
    def execute(cls, model, seed, mix_seed, layers, latent=None, truncation=1.0,
                class_index=-1) -> io.NodeOutput:
        _require_generator(model)
        bridge.check_interrupt()
        with bridge.lend_device(model) as device:
            images = gan_core.style_mix(model, latent if latent is not None else seed, mix_seed,
                                        layers=layers, truncation=truncation, device=device,
                                        class_index=class_index)
        return io.NodeOutput(images)
