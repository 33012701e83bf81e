"""`audio-walk` (gan_core/cli/audio.py) on tiny random-weight generators saved with
gan_core.save and songs made by gan_core.audio.synth: PNG frames + the segment's WAV without
PyAV, MP4 with sound when PyAV is installed, clear errors, Ctrl-C, and peak memory that does
not grow with the song's length."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gan_core
import gan_core.cli.audio as cli_audio
from gan_core.archs import get_arch
from gan_core.audio import (WavReader, WavWriter, analyze, demo_song, frame_sample,
                            frame_samples, read_wav, reactive_motion, render_frames, segment,
                            synth_clip, write_wav)
from gan_core.cli.audio import main

pytestmark = pytest.mark.usefixtures("core_single_thread")
REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def _save(tmp_path_factory, name: str, **config) -> Path:
    spec = get_arch(name)
    cfg = spec.config_cls(**config)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cli_audio") / f"{name}.safetensors"
    gan_core.save(gan_core.GANModel(name, cfg, {"G": spec.build(cfg)["G"]}), path)
    return path


@pytest.fixture(scope="module")
def tiny_w_plus(tmp_path_factory):
    """A 16 px StyleGAN2 with 8-d styles: mapping network and six w+ layers, fast."""
    return _save(tmp_path_factory, "stylegan2", image_size=16, style_dim=8, n_mlp=1,
                 channel_multiplier=1, base_channels=8)


@pytest.fixture(scope="module")
def tiny_z(tmp_path_factory):
    return _save(tmp_path_factory, "dcgan", image_size=32, ngf=8, ndf=8, latent_dim=16)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_audio_song") / "song.wav"
    write_wav(path, demo_song(8.0, 22050, channels=2), 22050)
    return path


@pytest.fixture
def no_pyav(monkeypatch):
    monkeypatch.setattr(cli_audio, "pyav", lambda: None)


@pytest.mark.slow  # the first checkpoint load of a process imports for a second or more
def test_png_frames_and_the_segments_wav_without_pyav(tmp_path, tiny_w_plus, song, no_pyav,
                                                      capsys):
    out = tmp_path / "frames"
    assert main(["audio-walk", str(tiny_w_plus), str(song), "--fps", "12", "--out", str(out),
                 "--start", "1.5", "--duration", "3.25", "--seeds", "1,5,9"]) == 0
    captured = capsys.readouterr()
    assert "PyAV is not installed" in captured.err and "pip install av" in captured.err
    assert "39 frames at 12 fps" in captured.out
    frames = 39  # round(3.25 * 12)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["audio.wav"] + [f"frame_{i:06d}.png" for i in range(frames)]
    # the WAV is the segment: exactly the frames' samples, bit for bit
    source, rate = read_wav(song)
    written, wrate = read_wav(out / "audio.wav")
    assert wrate == rate and written.shape == (2, frame_samples(frames, 12, rate))
    assert torch.equal(written, segment(source, rate, 1.5, 3.25, 12))
    # the PNGs are what the library renders for that segment
    model = gan_core.load(tiny_w_plus)
    space = gan_core.LatentSpace(model)
    motion = reactive_motion(space, analyze(written, rate, 12), [1, 5, 9], "pulse")
    expected = render_frames(space, motion)
    for i in (0, 17, 38):
        png = gan_core.read_image(out / f"frame_{i:06d}.png")
        assert (png - expected[i]).abs().max() <= 1 / 255 + 1e-6


def test_to_the_end_of_the_song_and_a_z_model(tmp_path, tiny_z, song, no_pyav):
    out = tmp_path / "z"
    assert main(["audio-walk", str(tiny_z), str(song), "--fps", "29.97", "--out", f"{out}/",
                 "--start", "6", "--preset", "drift", "--bass", "0.9", "--batch", "16"]) == 0
    frames = math.floor(2.0 * 29.97)  # the whole frames in the 2 s left
    assert len(list(out.glob("frame_*.png"))) == frames
    with WavReader(out / "audio.wav") as wav:
        assert wav.samples == frame_samples(frames, 29.97, 22050) <= 2 * 22050


def test_a_video_out_without_pyav_is_a_clear_error(tmp_path, tiny_w_plus, song, no_pyav,
                                                    capsys):
    for name in ("video.mp4", "video.webm"):
        assert main(["audio-walk", str(tiny_w_plus), str(song), "--out",
                     str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert "needs PyAV" in err and "pip install av" in err and "folder" in err
        assert not (tmp_path / name).exists()
    assert main(["audio-walk", str(tiny_w_plus), str(song), "--out",
                 str(tmp_path / "frame.png")]) == 2
    assert "give a video file" in capsys.readouterr().err


def test_songs_the_stdlib_cannot_read_name_the_extra(tmp_path, tiny_w_plus, no_pyav, capsys):
    fake = tmp_path / "song.mp3"
    fake.write_bytes(b"ID3" + bytes(100))
    assert main(["audio-walk", str(tiny_w_plus), str(fake), "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "only PCM WAV" in err and "pip install av" in err
    assert main(["audio-walk", str(tiny_w_plus), str(tmp_path / "none.wav"), "--out",
                 str(tmp_path / "f")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_segment_past_the_end_is_refused_before_rendering(tmp_path, tiny_w_plus, song,
                                                            no_pyav, capsys):
    out = tmp_path / "f"
    assert main(["audio-walk", str(tiny_w_plus), str(song), "--out", str(out), "--start", "5",
                 "--duration", "4"]) == 2
    err = capsys.readouterr().err
    assert "runs past the end" in err and "at most 3.000 s fit" in err and str(song) in err
    assert not out.exists()
    assert main(["audio-walk", str(tiny_w_plus), str(song), "--out", str(out), "--fps",
                 "0"]) == 2
    assert "--fps must be above 0" in capsys.readouterr().err


def test_ctrl_c_stops_cleanly_with_matching_sound(tmp_path, tiny_w_plus, song, no_pyav,
                                                  monkeypatch, capsys):
    """A real SIGINT on the second chunk's progress update: the chunk in hand is written,
    the audio stops with the last frame, and the exit code is 130."""
    import tqdm

    original = tqdm.tqdm.update
    calls = []

    def update(self, n=1):
        calls.append(n)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return original(self, n)

    monkeypatch.setattr(tqdm.tqdm, "update", update)
    out = tmp_path / "stopped"
    assert main(["audio-walk", str(tiny_w_plus), str(song), "--fps", "12", "--out", str(out),
                 "--batch", "8"]) == 130
    assert "interrupted after 16 of 96 frames" in capsys.readouterr().err
    assert len(list(out.glob("frame_*.png"))) == 16
    with WavReader(out / "audio.wav") as wav:
        assert wav.samples == frame_sample(16, 12, 22050)


@pytest.mark.slow
def test_an_mp4_carries_the_segments_sound(tmp_path, tiny_z):
    av = pytest.importorskip("av")
    rate, fps = 44100, 24.0
    path = tmp_path / "song.wav"
    write_wav(path, synth_clip(5.0, rate, channels=2), rate)
    out = tmp_path / "clip.mp4"
    assert main(["audio-walk", str(tiny_z), str(path), "--fps", "24", "--out", str(out),
                 "--start", "0.5", "--duration", "3"]) == 0
    with av.open(str(out)) as container:
        video, sound = container.streams.video[0], container.streams.audio[0]
        assert (video.width, video.height) == (32, 32) and sound.rate == rate
        assert sound.codec_context.channels == 2
        v_seconds = float(video.duration * video.time_base)
        a_seconds = float(sound.duration * sound.time_base)
        assert v_seconds == pytest.approx(3.0, abs=1e-6)
        assert abs(a_seconds - v_seconds) <= 1 / fps
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 72
    with av.open(str(out)) as container:
        decoded = sum(f.samples for f in container.decode(audio=0))
        assert abs(decoded / rate - 3.0) <= 1 / fps


CHILD = r"""
import resource, sys
from gan_core.cli.audio import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
sys.exit(code)
"""


@pytest.mark.slow
@pytest.mark.subprocess
def test_peak_memory_is_flat_in_song_length(tmp_path, tiny_w_plus):
    """The whole song rendered at 2 fps, 30 s against 5 minutes, each in its own process:
    the longer one needs no more than a few MiB more (holding its audio would take 26 MiB
    as float32; measured: +2.3 MiB at 4 fps, the analysis' few numbers per hop)."""
    rate = 22050
    block = synth_clip(30.0, rate, channels=1)
    short, long_ = tmp_path / "short.wav", tmp_path / "long.wav"
    write_wav(short, block, rate)
    with WavWriter(long_, rate, 1) as out:
        for _ in range(10):
            out.write(block)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "TQDM_DISABLE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, "audio-walk", str(tiny_w_plus),
                               str(song), "--fps", "2", "--batch", "30", "--out",
                               str(tmp_path / song.stem)],
                              env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for song in (short, long_)]
    peaks = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        peaks.append(int(out.strip().splitlines()[-1]))
    assert len(list((tmp_path / "long").glob("frame_*.png"))) == 600
    assert peaks[1] - peaks[0] <= 6 * MIB, json.dumps(peaks)
