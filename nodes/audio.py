"""Audio-Reactive Walk node: a song (ComfyUI's AUDIO) and a generator in; music-video frames,
their frame rate and the matching audio segment out, for core Create Video / Save Video. The
analysis and the motion are gan_core.audio's."""
from __future__ import annotations

import os

import torch

from .. import gan_core
from . import bridge, widgets
from .bridge import GAN_LATENT, io

ga = gan_core.audio
CAMERA_FEATURES = list(ga.CAMERA_FEATURES)
# ComfyUI keeps every frame of the IMAGE in memory (and Create Video another copy): the frames
# may take this share of the memory available when the node runs.
MEMORY_SHARE = 0.4
FALLBACK_BUDGET = 4 * 2 ** 30
SONG_RATE = 22050  # Example Song's sample rate: plenty for kick drums, bass and hi-hats


def _memory_budget() -> int:
    """Bytes the frames may take: a share of the memory available now (Linux / macOS), or
    4 GiB where the system does not say."""
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return FALLBACK_BUDGET
    return int(free * MEMORY_SHARE) if free > 0 else FALLBACK_BUDGET


class GANAtelierAudioReactiveWalk(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierAudioReactiveWalk",
            display_name="Audio-Reactive Walk (GAN Atelier)",
            category="GAN Atelier/latent",
            description=(
                "A music video from a generator: the walk through your keyframe seeds speeds up "
                "with the loudness, jumps and flashes on beats, the bass moves the coarse layers "
                "(shape), the mids the middle ones and the hi-hats the fine ones (colour, "
                "texture); a StyleGAN3 camera pans and turns with the music. Connect Load Audio "
                "before it and Create Video + Save Video after it: the frames, the fps and the "
                "audio segment line up exactly. Long songs: render with `python -m gan_core "
                "audio-walk`, which streams to a video file."),
            inputs=[
                widgets.model(),
                io.Audio.Input("audio", tooltip="the song, from core Load Audio (any sample "
                                                "rate, mono or stereo)"),
                io.Float.Input("fps", default=24.0, min=1.0, max=120.0, step=1.0,
                               tooltip="frames per second of the video"),
                io.String.Input("seeds", default="1,5,9,3",
                                tooltip="keyframe seeds the walk travels through, in order "
                                        "(it loops back to the first)"),
                io.Float.Input("start", default=0.0, min=0.0, max=36000.0, step=0.5,
                               tooltip="where the segment starts in the song, in seconds"),
                io.Float.Input("duration", default=8.0, min=0.0, max=36000.0, step=0.5,
                               tooltip="seconds of the song to render (0 = to the end); the "
                                       "node gives exactly round(duration * fps) frames"),
                io.Combo.Input("preset", options=list(ga.PRESETS), default="pulse",
                               tooltip="pulse: slow walk, strong jumps and flashes on beats; "
                                       "drift: glides with the loudness, beats barely show"),
                io.Float.Input("loudness_speed", default=-1.0, min=-1.0, max=10.0, step=0.05,
                               tooltip="how much faster the walk moves when the music is loud "
                                       "(keyframes per second at full loudness; -1 = the "
                                       "preset's)"),
                io.Float.Input("beat_strength", default=-1.0, min=-1.0, max=10.0, step=0.05,
                               tooltip="how far a beat pushes the image (in spreads of the "
                                       "latent codes; -1 = the preset's)"),
                io.Float.Input("bass", default=-1.0, min=-1.0, max=10.0, step=0.05,
                               tooltip="how much the bass moves the coarse layers (-1 = the "
                                       "preset's)"),
                io.Float.Input("mids", default=-1.0, min=-1.0, max=10.0, step=0.05,
                               tooltip="how much the mids move the middle layers (-1 = the "
                                       "preset's)"),
                io.Float.Input("treble", default=-1.0, min=-1.0, max=10.0, step=0.05,
                               tooltip="how much the treble (hi-hats) moves the fine layers "
                                       "(-1 = the preset's)"),
                widgets.truncation("below 1 keeps every frame closer to the average image"),
                io.Int.Input("class_index", default=-1, min=-1, max=100_000,
                             tooltip="the class of a conditional model (0, 1, ...); -1 for "
                                     "unconditional models"),
                io.Combo.Input("camera", options=CAMERA_FEATURES, default="bass",
                               tooltip="StyleGAN3: which part of the music moves the camera "
                                       "(pan and turn); none = a still camera. Other models "
                                       "have no camera and ignore it"),
                io.Float.Input("camera_strength", default=1.0, min=0.0, max=10.0, step=0.1,
                               tooltip="StyleGAN3: scales the preset's pan and rotation"),
                GAN_LATENT.Input("latent", optional=True,
                                 tooltip="optional start (from Invert Image): the video begins "
                                         "at this latent, then visits the seeds"),
            ],
            outputs=[io.Image.Output(display_name="frames", tooltip="the video's frames, RGB"),
                     io.Float.Output(display_name="fps", tooltip="the frame rate, for Create "
                                                                 "Video"),
                     io.Audio.Output(display_name="audio",
                                     tooltip="the song's segment, as long as the frames, for "
                                             "Create Video")],
        )

    @classmethod
    def validate_inputs(cls, seeds=None, fps=None):
        error = bridge.widget_errors(cls, fps=fps)
        if error:
            return error
        try:
            if seeds is not None:
                gan_core.parse_seeds(seeds)
            if fps is not None:
                ga.check_fps(fps)
        except ValueError as exc:
            return str(exc)
        return True

    @classmethod
    def execute(cls, model, audio, fps, seeds, start, duration, preset, loudness_speed,
                beat_strength, bass, mids, treble, truncation, class_index, camera,
                camera_strength, latent=None) -> io.NodeOutput:
        if model.task != "generate":
            raise ValueError(f"model: expected a generator, got a {model.task!r} model "
                             f"({model.arch})")
        features, segment = ga.analyze_audio(audio, fps, start, duration or None)
        base = ga.preset(preset)
        overrides = {"camera_feature": camera,
                     "pan_x": base.pan_x * camera_strength, "pan_y": base.pan_y * camera_strength,
                     "rotate": base.rotate * camera_strength}
        for value, field in ((loudness_speed, "loudness_gain"), (beat_strength, "onset_push"),
                             (bass, "bass_gain"), (mids, "mid_gain"), (treble, "treble_gain")):
            if value >= 0:
                overrides[field] = value
        settings = ga.preset(base, **overrides)
        size = model.image_size or 0
        ga.check_frames_fit(features.frames, size, size, _memory_budget(), fps,
                            what="Audio-Reactive Walk")
        progress = bridge.Progress(features.frames)
        with bridge.lend_device(model) as device:
            space = gan_core.LatentSpace(model, device, class_index=class_index)
            motion = ga.reactive_motion(space, features, gan_core.parse_seeds(seeds), settings,
                                        start=latent, truncation=truncation)
            frames = ga.render_frames(space, motion, batch_size=8,
                                      callbacks=gan_core.TrainCallbacks(
                                          on_step=lambda done, _: progress.update(done),
                                          check_stop=bridge.check_interrupt))
        return io.NodeOutput(frames, float(fps), segment)


class GANAtelierExampleSong(io.ComfyNode):
    """A built-in song, so a music-video graph runs with no audio file (as Example Dataset is
    the built-in pictures)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="GANAtelierExampleSong",
            display_name="Example Song (GAN Atelier)",
            category="GAN Atelier/data",
            description=(
                "A synthesized song to try music videos with, no file needed: quiet hi-hats, "
                "then clicks join, then a loud part with kick drums and bass, then a breakdown "
                "on the bass alone. Replace it with core Load Audio for your own music."),
            inputs=[
                io.Float.Input("seconds", default=12.0, min=1.0, max=600.0, step=1.0,
                               tooltip="length of the song in seconds"),
                io.Float.Input("bpm", default=120.0, min=40.0, max=240.0, step=1.0,
                               tooltip="tempo in beats per minute"),
                widgets.seed("varies the hi-hats and the melody; the same seed gives the same "
                             "song (a new node keeps it fixed: it feeds long renders)"),
            ],
            outputs=[io.Audio.Output(display_name="audio",
                                     tooltip="the song, stereo at 22050 Hz, for Audio-Reactive "
                                             "Walk and Create Video")],
        )

    @classmethod
    def execute(cls, seconds, bpm, seed) -> io.NodeOutput:
        wave = ga.demo_song(seconds, SONG_RATE, bpm=bpm, seed=seed % 2 ** 32)
        # ComfyUI's AUDIO: a [batch, channels, samples] float waveform and its rate
        return io.NodeOutput({"waveform": torch.from_numpy(wave).unsqueeze(0),
                              "sample_rate": SONG_RATE})
