"""`audio-walk`: a music video from a generator and a song, rendered in chunks and streamed to
the output, so memory stays flat whatever the song's length.

With PyAV (`pip install av`, an optional extra) the output is a video file (.mp4 / .mov /
.mkv: H.264 + AAC; .webm: VP9 + Opus) carrying the same segment of the song, and the song
may be any format FFmpeg reads. Without it the song must be a PCM WAV file and the output is
a folder: frame_000000.png ... and audio.wav (the segment), to join with any video tool.
"""
from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

import gan_core
ga = gan_core.audio  # the music-video toolkit, part of gan_core's public API

from .runner import StopOnCtrlC

VIDEO_FORMATS = {".mp4": ("libx264", "aac"), ".mov": ("libx264", "aac"),
                 ".mkv": ("libx264", "aac"), ".webm": ("libvpx-vp9", "libopus")}
NOT_FOLDERS = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".wav",
               ".mp3", ".flac", ".ogg", ".m4a", ".avi"}
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
EXTRA = ("PyAV, an optional extra (pip install av), writes MP4 / WebM video with the sound "
         "and reads MP3, FLAC, OGG and float WAV")


def pyav() -> Any:
    """The `av` module, or None when PyAV is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


# ----------------------------------------------------------------------------- audio in


class WavSource:
    """A PCM WAV song, read block by block (standard library only)."""

    def __init__(self, path: str):
        self.path = path
        with ga.WavReader(path) as wav:
            self.sample_rate, self.channels, self.samples = wav.sample_rate, wav.channels, \
                wav.samples

    def blocks(self, start: int, count: int) -> Iterator[np.ndarray]:
        with ga.WavReader(self.path) as wav:
            yield from wav.blocks(start, min(count, max(0, self.samples - start)))


class AvSource:
    """Any song FFmpeg decodes, through PyAV: decoded once to count its samples, then again
    (from the start, skipping) for each pass, so nothing is held but one decoded frame."""

    def __init__(self, path: str, av: Any):
        self.path, self.av = path, av
        self.samples = 0
        self.sample_rate = self.channels = 0
        for block in self._decode():
            self.samples += block.shape[1]
        if self.samples == 0:
            raise ValueError(f"audio file {path!r} has no audio samples")

    def _decode(self) -> Iterator[np.ndarray]:
        av = self.av
        try:
            container = av.open(self.path)
        except Exception as exc:  # PyAV raises its own error classes per FFmpeg error
            raise ValueError(f"audio file {self.path!r} cannot be read: {exc}") from None
        with container:
            if not container.streams.audio:
                raise ValueError(f"{self.path!r} has no audio stream")
            stream = container.streams.audio[0]
            self.sample_rate = int(stream.rate or stream.codec_context.sample_rate)
            channels = stream.codec_context.channels or len(stream.layout.channels)
            self.channels = min(2, int(channels))
            resampler = av.AudioResampler(format="fltp", layout="mono" if self.channels == 1
                                          else "stereo", rate=self.sample_rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().astype(np.float32, copy=False)
            for out in resampler.resample(None):
                yield out.to_ndarray().astype(np.float32, copy=False)

    def blocks(self, start: int, count: int) -> Iterator[np.ndarray]:
        at, end = 0, start + count
        for block in self._decode():
            lo, hi = max(start, at), min(end, at + block.shape[1])
            if hi > lo:
                yield block[:, lo - at:hi - at]
            at += block.shape[1]
            if at >= end:
                return


def open_song(path: str, av: Any) -> WavSource | AvSource:
    if not Path(path).is_file():
        raise ValueError(f"audio file {path!r} does not exist")
    try:
        return WavSource(path)
    except ValueError:
        if av is None:
            if Path(path).suffix.lower() != ".wav":
                raise ValueError(f"audio file {path!r}: without PyAV only PCM WAV files are "
                                 f"read; {EXTRA}") from None
            raise
    return AvSource(path, av)


class SampleStream:
    """Exact-length reads from an iterator of [C, n] blocks; silence after its end."""

    def __init__(self, blocks: Iterator[np.ndarray], channels: int):
        self.blocks, self.channels = blocks, channels
        self.pending = np.zeros((channels, 0), np.float32)

    def take(self, n: int) -> np.ndarray:
        parts, have = [self.pending], self.pending.shape[1]
        while have < n:
            block = next(self.blocks, None)
            if block is None:
                parts.append(np.zeros((self.channels, n - have), np.float32))
                have = n
                break
            parts.append(block)
            have += block.shape[1]
        joined = np.concatenate(parts, 1) if len(parts) > 1 else parts[0]
        self.pending = joined[:, n:]
        return joined[:, :n]


# ----------------------------------------------------------------------------- output


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """IMAGE [n, H, W, 3] -> uint8, rounded as gan_core.tensor_to_pil rounds."""
    img = torch.nan_to_num(images.detach().cpu().float(), nan=0.0, posinf=1.0, neginf=0.0)
    return img.clamp(0.0, 1.0).mul(255.0).add(0.5).to(torch.uint8).numpy()


class FrameFolder:
    """frame_000000.png ... and audio.wav (the segment's samples, 16-bit PCM)."""

    def __init__(self, folder: Path, sample_rate: int, channels: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.audio = ga.WavWriter(folder / "audio.wav", sample_rate, channels)

    def write(self, index: int, images: torch.Tensor, samples: np.ndarray) -> None:
        from PIL import Image

        for k, arr in enumerate(to_uint8(images)):
            Image.fromarray(arr, "RGB").save(self.folder / f"frame_{index + k:06d}.png",
                                             compress_level=1)  # frames for an encoder: fast
        self.audio.write(samples)

    def close(self) -> None:
        self.audio.close()


class VideoFile:
    """A video file through PyAV: frames and their audio muxed chunk by chunk."""

    def __init__(self, path: Path, av: Any, fps: float, width: int, height: int,
                 sample_rate: int, channels: int, quality: int | None):
        vcodec, acodec = VIDEO_FORMATS[path.suffix.lower()]
        path.parent.mkdir(parents=True, exist_ok=True)
        self.av = av
        self.rate = Fraction(fps).limit_denominator(1001)
        self.container = av.open(str(path), mode="w")
        self.video = self.container.add_stream(vcodec, rate=self.rate)
        self.width, self.height = width + width % 2, height + height % 2  # yuv420p: even
        self.video.width, self.video.height = self.width, self.height
        self.video.pix_fmt = "yuv420p"
        if vcodec == "libx264":
            self.video.options = {"crf": str(20 if quality is None else quality),
                                  "preset": "medium"}
        else:
            self.video.options = {"crf": str(32 if quality is None else quality), "b:v": "0",
                                  "deadline": "realtime", "cpu-used": "8"}
        self.channels = min(2, channels)
        self.layout = "mono" if self.channels == 1 else "stereo"
        if acodec == "libopus":
            out_rate = 48000
        else:
            out_rate = sample_rate if sample_rate in AAC_RATES else 48000
        self.sample_rate = sample_rate
        self.audio = self.container.add_stream(acodec, rate=out_rate, layout=self.layout)
        self.samples = 0

    def _mux(self, packets) -> None:
        for packet in packets:
            self.container.mux(packet)

    def write(self, index: int, images: torch.Tensor, samples: np.ndarray) -> None:
        av = self.av
        frames = to_uint8(images)
        pad_h, pad_w = self.height - frames.shape[1], self.width - frames.shape[2]
        if pad_h or pad_w:
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        for k, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            frame.pts = index + k
            frame.time_base = 1 / self.rate
            self._mux(self.video.encode(frame))
        if samples.shape[1]:
            block = np.ascontiguousarray(samples[:self.channels], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=self.layout)
            frame.sample_rate = self.sample_rate
            frame.pts = self.samples
            frame.time_base = Fraction(1, self.sample_rate)
            self.samples += block.shape[1]
            self._mux(self.audio.encode(frame))

    def close(self) -> None:
        try:
            self._mux(self.video.encode(None))
            self._mux(self.audio.encode(None))
        finally:
            self.container.close()


def output_kind(out: str, av: Any) -> str:
    """"video" or "folder" for --out, or a clear error."""
    path = Path(out)
    suffix = "" if out.endswith(("/", "\\")) else path.suffix.lower()
    if suffix in VIDEO_FORMATS:
        if av is None:
            raise ValueError(f"--out {out}: a {suffix} video needs PyAV, which is not "
                             f"installed. {EXTRA}; without it give a folder (e.g. --out "
                             f"{path.with_suffix('')}/) for PNG frames and a WAV")
        return "video"
    if suffix in NOT_FOLDERS:
        raise ValueError(f"--out {out}: give a video file ({', '.join(VIDEO_FORMATS)}) or a "
                         "folder for frame_000000.png ... and audio.wav")
    return "folder"


# ----------------------------------------------------------------------------- the command


def _settings(args: argparse.Namespace) -> ga.ReactiveSettings:
    names = {"base_speed": "base_speed", "loudness_gain": "loudness_gain",
             "onset_jump": "onset_jump", "onset_push": "onset_push",
             "pulse_decay": "pulse_decay", "bass": "bass_gain", "mid": "mid_gain",
             "treble": "treble_gain", "direction_seed": "direction_seed"}
    overrides = {field: getattr(args, arg) for arg, field in names.items()
                 if getattr(args, arg, None) is not None}
    return ga.preset(args.preset, **overrides)


def _analysis_settings(args: argparse.Namespace) -> ga.AnalysisSettings:
    extra: dict[str, Any] = {}
    if args.bands:
        try:
            edges = tuple(float(v) for v in args.bands.split(","))
        except ValueError:
            raise ValueError(f"--bands: expected three edges in Hz like 20,250,4000, got "
                             f"{args.bands!r}") from None
        extra["bands"] = edges
    for name in ("attack", "release"):
        if getattr(args, name) is not None:
            extra[name] = getattr(args, name)
    return ga.AnalysisSettings(**extra)


def _generator(path: str, device: str | None) -> gan_core.GANModel:
    model = gan_core.load(path)
    if model.task != "generate":
        raise ValueError(f"{path} is a {model.task!r} model ({model.arch}), not a generator")
    if device:
        model.to(device)
    return model


def cmd_audio_walk(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    av = pyav()
    kind = output_kind(args.out, av)
    fps = ga.check_fps(args.fps, "--fps")
    settings = _settings(args)
    analysis = _analysis_settings(args)
    seeds = gan_core.parse_seeds(args.seeds)
    song = open_song(args.audio, av)
    bounds = ga.segment_bounds(song.samples, song.sample_rate, args.start, args.duration, fps,
                               what=f"audio file {args.audio!r}")
    model = _generator(args.model, args.device)
    if kind == "folder" and av is None:
        print(f"note: PyAV is not installed, so {args.out} gets PNG frames and audio.wav. "
              f"{EXTRA}.", file=sys.stderr)

    analyzer = ga.AudioAnalyzer(song.sample_rate, fps, analysis)
    for block in song.blocks(bounds.start, bounds.samples - bounds.pad):
        analyzer.feed(block)
    if bounds.pad:
        analyzer.feed(np.zeros((song.channels, bounds.pad), np.float32))
    features = analyzer.finish()
    assert features.frames == bounds.frames, (features.frames, bounds)

    space = gan_core.LatentSpace(model)
    motion = ga.reactive_motion(space, features, seeds, settings, truncation=args.truncation)
    sound = SampleStream(song.blocks(bounds.start, bounds.samples - bounds.pad), song.channels)
    out = Path(args.out)
    writer: FrameFolder | VideoFile | None = None
    total = motion.frames
    written = 0
    bar = tqdm(total=total, desc=f"audio-walk {model.arch}", unit="frame", dynamic_ncols=True)
    stop = StopOnCtrlC(announce=False)
    try:
        with stop:
            for index, images in ga.iter_frames(space, motion, noise=args.noise,
                                                batch_size=args.batch):
                if writer is None:  # sized from the first frames the model makes
                    height, width = int(images.shape[1]), int(images.shape[2])
                    writer = FrameFolder(out, song.sample_rate, song.channels) \
                        if kind == "folder" else \
                        VideoFile(out, av, fps, width, height, song.sample_rate, song.channels,
                                  args.quality)
                stop_at = index + len(images)
                samples = sound.take(ga.frame_sample(stop_at, fps, song.sample_rate)
                                     - ga.frame_sample(index, fps, song.sample_rate))
                writer.write(index, images, samples)
                written = stop_at
                bar.update(len(images))
                if stop.requested():
                    break
    except KeyboardInterrupt:  # a second Ctrl-C: close what was written
        stop.pressed = True
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    where = f"{out}/ (frame_000000.png ..., audio.wav)" if kind == "folder" else str(out)
    if stop.pressed and written < total:
        print(f"\ninterrupted after {written} of {total} frames; {where} holds them with "
              f"their sound", file=sys.stderr)
        return 130
    info = features.summary()
    print(f"wrote {where}: {total} frames at {fps:g} fps ({total / fps:.2f} s) with "
          f"{song.sample_rate} Hz audio; tempo {info['tempo_bpm']:g} BPM, "
          f"{info['onsets']} onsets")
    return 0


def add_audio_commands(sub) -> None:
    p = sub.add_parser("audio-walk", help="a music video: a latent walk that moves with a song "
                                          "(MP4/WebM with PyAV, else PNG frames + WAV)")
    p.add_argument("model", help="a generator checkpoint")
    p.add_argument("audio", help="the song: PCM WAV (any format FFmpeg reads with PyAV)")
    p.add_argument("--out", required=True,
                   help="video.mp4 / .mov / .mkv / .webm (needs PyAV), or a folder for "
                        "frame_000000.png ... and audio.wav")
    p.add_argument("--fps", type=float, default=24.0, help="frame rate (default: %(default)s)")
    p.add_argument("--start", type=float, default=0.0, help="segment start in seconds")
    p.add_argument("--duration", type=float, default=None,
                   help="segment length in seconds (default: to the end of the song)")
    p.add_argument("--seeds", default="0,1,2,3", help="keyframe seeds in order, e.g. 1,5,9 "
                                                     "(default: %(default)s)")
    p.add_argument("--preset", default="pulse", choices=list(ga.PRESETS),
                   help="strengths to start from (default: %(default)s)")
    p.add_argument("--truncation", type=float, default=1.0)
    group = p.add_argument_group("reactivity (override the preset)")
    group.add_argument("--base-speed", type=float, default=None,
                       help="keyframes per second in silence")
    group.add_argument("--loudness-gain", type=float, default=None,
                       help="extra keyframes per second at full loudness")
    group.add_argument("--onset-jump", type=float, default=None,
                       help="share of a keyframe segment an onset advances the walk")
    group.add_argument("--onset-push", type=float, default=None,
                       help="how far an onset pushes the latent (code spreads)")
    group.add_argument("--pulse-decay", type=float, default=None, help="seconds")
    group.add_argument("--bass", type=float, default=None, help="bass -> coarse layers")
    group.add_argument("--mid", type=float, default=None, help="mid -> middle layers")
    group.add_argument("--treble", type=float, default=None, help="treble -> fine layers")
    group.add_argument("--direction-seed", type=int, default=None)
    group.add_argument("--bands", default=None, help="band edges in Hz (default: 20,250,4000)")
    group.add_argument("--attack", type=float, default=None, help="smoothing rise, seconds")
    group.add_argument("--release", type=float, default=None, help="smoothing fall, seconds")
    p.add_argument("--noise", default="fixed", choices=["fixed", "none"])
    p.add_argument("--batch", type=int, default=8, help="frames rendered at once")
    p.add_argument("--quality", type=int, default=None,
                   help="encoder CRF (default: 20 for H.264, 32 for VP9)")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_audio_walk)


def main(argv: list[str] | None = None) -> int:
    """`python -m gan_core.cli.audio audio-walk ...` (the same as `python -m gan_core
    audio-walk ...` once the command is registered in gan_core.cli)."""
    parser = argparse.ArgumentParser(prog="python -m gan_core")
    add_audio_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        return args.func(args)
    except (gan_core.GanAtelierError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
