"""Music videos: audio analysis at the video frame rate, the audio-reactive latent walk, WAV
files and synthetic test audio. Only torch and numpy (no audio library): the STFT is numpy's
FFT; WAV goes through the standard library's `wave` module.

    from gan_core.audio import analyze, segment, reactive_motion, render_frames
    cut = segment(waveform, rate, start=10.0, duration=8.0, fps=24)   # exactly 192 frames
    features = analyze(cut, rate, fps=24)
    motion = reactive_motion(gan_core.LatentSpace(model), features, seeds=[1, 5, 9],
                             settings="pulse")
    frames = render_frames(gan_core.LatentSpace(model), motion)       # IMAGE [192, H, W, 3]
"""
from .analysis import (BANDS, FEATURES, AnalysisSettings, AudioAnalyzer, AudioFeatures,
                       SegmentBounds, analyze, analyze_audio, as_waveform, audio_waveform,
                       check_fps, estimate_tempo, frame_count, frame_sample, frame_samples,
                       segment, segment_bounds)
from .motion import (BAND_LAYERS, CAMERA_FEATURES, LAYER_GROUPS, PRESETS, ReactiveMotion,
                     ReactiveSettings, check_frames_fit, code_spread, fit_duration,
                     frames_nbytes, iter_frames, layer_groups, preset, reactive_motion,
                     render_frames)
from .synth import beat_times, click_track, demo_song, synth_clip, tone
from .wav import WAV_BITS, WavReader, WavWriter, read_wav, write_wav

__all__ = [
    "AnalysisSettings", "AudioAnalyzer", "AudioFeatures", "BANDS", "BAND_LAYERS",
    "CAMERA_FEATURES", "FEATURES", "LAYER_GROUPS", "PRESETS", "ReactiveMotion",
    "ReactiveSettings", "SegmentBounds", "WAV_BITS", "WavReader", "WavWriter", "analyze",
    "analyze_audio", "as_waveform", "audio_waveform", "beat_times", "check_fps",
    "check_frames_fit", "click_track", "code_spread", "demo_song", "estimate_tempo",
    "fit_duration", "frame_count", "frame_sample", "frame_samples", "frames_nbytes",
    "iter_frames", "layer_groups", "preset", "reactive_motion", "read_wav", "render_frames",
    "segment", "segment_bounds", "synth_clip", "tone", "write_wav",
]
