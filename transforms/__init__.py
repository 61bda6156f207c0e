"""stemforge transforms: audio I/O, model-input conversion, augmentation, STFT.

Imports no Beam; every function is safe to call from many threads at once
(stateful objects — readers, resamplers, streaming filters — are per stream).

Names load on first use, so importing one module here (``transforms.errors``) does not load
audiomentations and scipy: `stemforge --help` and `inspect` stay quick.
"""

from __future__ import annotations

from transforms.lazy_names import lazy_names

# Names that are also the names of submodules are bound now: importing ``transforms.resample`` later would
# otherwise bind the module, not the function, under ``resample``.
from transforms.resample import resample
from transforms.stft import stft

_HOMES = {  # each public name and the module that defines it
    "AUDIO_EXTENSIONS": "transforms.audio_io",
    "audio_info": "transforms.audio_io",
    "load_audio": "transforms.audio_io",
    "open_audio": "transforms.audio_io",
    "AudioInfo": "transforms.audio_reader",
    "AudioReader": "transforms.audio_reader",
    "Band": "transforms.bands",
    "BandParams": "transforms.bands",
    "BandParamsError": "transforms.bands",
    "list_band_params": "transforms.bands",
    "load_band_params": "transforms.bands",
    "AugmentChain": "transforms.chain",
    "AugmentPlan": "transforms.chain",
    "resolve_transform": "transforms.chain",
    "MULTICHANNEL_POLICIES": "transforms.channels",
    "downmix_matrix": "transforms.channels",
    "to_model_channels": "transforms.channels",
    "REASONS": "transforms.errors",
    "AudioError": "transforms.errors",
    "StreamingZeroPhaseLowpass": "transforms.lowpass",
    "lowpass_biquad_coefficients": "transforms.lowpass",
    "zero_phase_lowpass": "transforms.lowpass",
    "MODEL_SAMPLE_RATE": "transforms.model_input",
    "to_model_input": "transforms.model_input",
    "MultibandAnalysis": "transforms.multiband",
    "analyse": "transforms.multiband",
    "analysis_frames": "transforms.multiband",
    "synthesise": "transforms.multiband",
    "to_input_rate": "transforms.multiband",
    "mirroring": "transforms.multiband_filters",
    "MultibandStreamAnalysis": "transforms.multiband_stream",
    "synthesise_stream": "transforms.multiband_stream",
    "Resampler": "transforms.resample",
    "resample": "transforms.resample",
    "resampled_length": "transforms.resample",
    "derive_seed": "transforms.seeding",
    "check_geometry": "transforms.stft",
    "end_padded_frames": "transforms.stft",
    "frames_for_samples": "transforms.stft",
    "istft": "transforms.stft",
    "istft_samples": "transforms.stft",
    "num_frames": "transforms.stft",
    "stft": "transforms.stft",
    "stft_frames": "transforms.stft",
    "ZeroPhaseBiquadLowPass": "transforms.zero_phase_biquad_lowpass",
    "LinearTransform": "transforms.linear",
}

__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())
