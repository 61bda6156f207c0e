"""stemforge transforms: audio I/O, model-input conversion, augmentation, STFT.

Imports no Beam; every function is safe to call from many threads at once
(stateful objects — readers, resamplers, streaming filters — are per stream).

Names load on first use, so importing one module here (``transforms.errors``) does not load
audiomentations and scipy: `stemforge --help` and `inspect` stay quick.
"""

from __future__ import annotations

from stemforge.transforms.lazy_names import lazy_names

# Names that are also the names of submodules are bound now: importing ``transforms.resample`` later would
# otherwise bind the module, not the function, under ``resample``.
from stemforge.transforms.resample import resample
from stemforge.transforms.stft import stft

_HOMES = {  # each public name and the module that defines it
    "AUDIO_EXTENSIONS": "stemforge.transforms.audio_io",
    "audio_info": "stemforge.transforms.audio_io",
    "load_audio": "stemforge.transforms.audio_io",
    "open_audio": "stemforge.transforms.audio_io",
    "AudioInfo": "stemforge.transforms.audio_reader",
    "AudioReader": "stemforge.transforms.audio_reader",
    "Band": "stemforge.transforms.bands",
    "BandParams": "stemforge.transforms.bands",
    "BandParamsError": "stemforge.transforms.bands",
    "list_band_params": "stemforge.transforms.bands",
    "load_band_params": "stemforge.transforms.bands",
    "AugmentChain": "stemforge.transforms.chain",
    "AugmentPlan": "stemforge.transforms.chain",
    "resolve_transform": "stemforge.transforms.chain",
    "MULTICHANNEL_POLICIES": "stemforge.transforms.channels",
    "downmix_matrix": "stemforge.transforms.channels",
    "to_model_channels": "stemforge.transforms.channels",
    "REASONS": "stemforge.transforms.errors",
    "AudioError": "stemforge.transforms.errors",
    "StreamingZeroPhaseLowpass": "stemforge.transforms.lowpass",
    "lowpass_biquad_coefficients": "stemforge.transforms.lowpass",
    "zero_phase_lowpass": "stemforge.transforms.lowpass",
    "MODEL_SAMPLE_RATE": "stemforge.transforms.model_input",
    "to_model_input": "stemforge.transforms.model_input",
    "MultibandAnalysis": "stemforge.transforms.multiband",
    "analyse": "stemforge.transforms.multiband",
    "analysis_frames": "stemforge.transforms.multiband",
    "synthesise": "stemforge.transforms.multiband",
    "to_input_rate": "stemforge.transforms.multiband",
    "mirroring": "stemforge.transforms.multiband_filters",
    "MultibandStreamAnalysis": "stemforge.transforms.multiband_stream",
    "synthesise_stream": "stemforge.transforms.multiband_stream",
    "Resampler": "stemforge.transforms.resample",
    "resample": "stemforge.transforms.resample",
    "resampled_length": "stemforge.transforms.resample",
    "derive_seed": "stemforge.transforms.seeding",
    "check_geometry": "stemforge.transforms.stft",
    "end_padded_frames": "stemforge.transforms.stft",
    "frames_for_samples": "stemforge.transforms.stft",
    "istft": "stemforge.transforms.stft",
    "istft_samples": "stemforge.transforms.stft",
    "num_frames": "stemforge.transforms.stft",
    "stft": "stemforge.transforms.stft",
    "stft_frames": "stemforge.transforms.stft",
    "ZeroPhaseBiquadLowPass": "stemforge.transforms.zero_phase_biquad_lowpass",
    "LinearTransform": "stemforge.transforms.linear",
}

__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())
