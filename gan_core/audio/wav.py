"""PCM WAV files through the standard library's `wave` module: 8-bit (unsigned), 16, 24 and
32-bit integer samples, any channel count, read and written block by block so a long song
never has to sit in memory. Samples are float32 [C, n] in [-1, 1] on our side.

Float WAV (format 3), MP3, FLAC, OGG and the rest need a decoder: the command line reads them
through PyAV (an optional extra, `pip install av`)."""
from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

WAV_BITS = (8, 16, 24, 32)
_BLOCK = 1 << 16  # samples per channel and read


class WavReader:
    """An open PCM WAV file. `sample_rate`, `channels`, `samples` (per channel), `bits`;
    `read(n)` returns the next float32 [C, <=n] block, `seek(sample)` moves the position."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._wav = wave.open(str(self.path), "rb")
        except (wave.Error, EOFError) as exc:
            raise ValueError(f"audio file {str(self.path)!r} is not a PCM WAV file the standard "
                             f"library can read ({exc}); 8/16/24/32-bit integer PCM is read "
                             "without extras, float WAV, MP3, FLAC and OGG need PyAV "
                             "(pip install av)") from None
        self.sample_rate = int(self._wav.getframerate())
        self.channels = int(self._wav.getnchannels())
        self.samples = int(self._wav.getnframes())
        self.bits = 8 * int(self._wav.getsampwidth())
        if self.bits not in WAV_BITS or self.channels < 1 or self.sample_rate < 1:
            self.close()
            raise ValueError(f"audio file {str(self.path)!r}: {self.bits}-bit samples, "
                             f"{self.channels} channels at {self.sample_rate} Hz; expected "
                             f"{'/'.join(map(str, WAV_BITS))}-bit PCM")

    def seek(self, sample: int) -> None:
        if not 0 <= sample <= self.samples:
            raise ValueError(f"audio file {str(self.path)!r}: sample {sample} is outside "
                             f"0..{self.samples}")
        self._wav.setpos(int(sample))

    def read(self, n: int) -> np.ndarray:
        raw = self._wav.readframes(int(n))
        return decode_pcm(raw, self.bits // 8, self.channels)

    def blocks(self, start: int = 0, count: int | None = None,
               block: int = _BLOCK) -> Iterator[np.ndarray]:
        """float32 [C, <=block] blocks of samples [start, start + count) (to the end when
        count is None; fewer when the file ends first)."""
        self.seek(start)
        left = self.samples - start if count is None else int(count)
        while left > 0:
            part = self.read(min(block, left))
            if part.shape[1] == 0:
                return
            left -= part.shape[1]
            yield part

    def close(self) -> None:
        self._wav.close()

    def __enter__(self) -> "WavReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode_pcm(raw: bytes, width: int, channels: int) -> np.ndarray:
    """Interleaved little-endian PCM bytes -> float32 [C, n] in [-1, 1)."""
    frame = width * channels
    raw = raw[:len(raw) - len(raw) % frame]
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = ((v ^ 0x800000) - 0x800000).astype(np.float32) / 8388608.0
    elif width == 4:
        x = (np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        raise ValueError(f"{8 * width}-bit PCM is not supported; expected one of {WAV_BITS}")
    return np.ascontiguousarray(x.reshape(-1, channels).T)


def encode_pcm(block: np.ndarray, width: int) -> bytes:
    """float [C, n] -> interleaved little-endian PCM bytes: scaled by 2 ** (bits - 1) as
    decode_pcm divides, rounded and clipped, so samples read from a file of up to 24 bits
    write back exactly (float32 holds 24 bits)."""
    if width not in (1, 2, 3, 4):
        raise ValueError(f"{8 * width}-bit PCM is not supported; expected one of {WAV_BITS}")
    x = np.nan_to_num(np.asarray(block, np.float64), nan=0.0).T.reshape(-1)
    full = float(1 << (8 * width - 1))
    v = np.clip(np.round(x * full), -full, full - 1)
    if width == 1:
        return (v + 128).astype(np.uint8).tobytes()
    if width == 2:
        return v.astype("<i2").tobytes()
    if width == 3:
        u = v.astype(np.int64) & 0xFFFFFF
        return np.stack([u & 0xFF, (u >> 8) & 0xFF, u >> 16], 1).astype(np.uint8).tobytes()
    return v.astype("<i4").tobytes()


class WavWriter:
    """Writes float [C, n] blocks to a PCM WAV file (16-bit by default) as they come."""

    def __init__(self, path: str | os.PathLike, sample_rate: int, channels: int, bits: int = 16):
        if bits not in WAV_BITS:
            raise ValueError(f"bits must be one of {WAV_BITS}, got {bits}")
        if int(sample_rate) < 1 or int(channels) < 1:
            raise ValueError(f"a WAV file needs a positive sample rate and channel count, got "
                             f"{sample_rate} Hz and {channels} channels")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.channels, self.width = int(channels), bits // 8
        self.samples = 0
        self._wav = wave.open(str(self.path), "wb")
        self._wav.setnchannels(self.channels)
        self._wav.setsampwidth(self.width)
        self._wav.setframerate(int(sample_rate))

    def write(self, block: np.ndarray | torch.Tensor) -> None:
        if isinstance(block, torch.Tensor):
            block = block.detach().cpu().numpy()
        block = np.asarray(block)
        if block.ndim == 1:
            block = block[None]
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"WAV writer: expected samples shaped [{self.channels}, n], got "
                             f"{tuple(block.shape)}")
        self._wav.writeframes(encode_pcm(block, self.width))
        self.samples += int(block.shape[1])

    def close(self) -> None:
        self._wav.close()

    def __enter__(self) -> "WavWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_wav(path: str | os.PathLike, waveform: np.ndarray | torch.Tensor, sample_rate: int,
              bits: int = 16) -> Path:
    """Write a waveform ([T], [C, T], or ComfyUI's [1, C, T]) as a PCM WAV file."""
    if isinstance(waveform, torch.Tensor):
        waveform = waveform.detach().cpu().numpy()
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim == 3 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"write_wav: expected a waveform [T], [C, T] or [1, C, T], got "
                         f"{tuple(np.shape(waveform))}")
    with WavWriter(path, sample_rate, x.shape[0], bits) as out:
        for i in range(0, x.shape[1], _BLOCK):
            out.write(x[:, i:i + _BLOCK])
    return Path(path)


def read_wav(path: str | os.PathLike, start: int = 0,
             count: int | None = None) -> tuple[torch.Tensor, int]:
    """(float32 [C, T] in [-1, 1], sample rate) of a PCM WAV file, or of samples
    [start, start + count) of it."""
    with WavReader(path) as wav:
        parts = list(wav.blocks(start, count))
        x = np.concatenate(parts, 1) if parts else np.zeros((wav.channels, 0), np.float32)
        return torch.from_numpy(x), wav.sample_rate
