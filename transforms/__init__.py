"""stemforge transforms: audio I/O, model-input conversion, augmentation, STFT.

Imports no Beam; every function is safe to call from many threads at once
(stateful objects — readers, resamplers, streaming filters — are per stream).
"""

from transforms.audio_io import AUDIO_EXTENSIONS, audio_info, load_audio, open_audio
from transforms.audio_reader import AudioInfo, AudioReader
from transforms.bands import Band, BandParams, BandParamsError, list_band_params, load_band_params
from transforms.chain import AugmentChain, AugmentPlan, resolve_transform
from transforms.channels import MULTICHANNEL_POLICIES, downmix_matrix, to_model_channels
from transforms.errors import REASONS, AudioError
from transforms.lowpass import (
    StreamingZeroPhaseLowpass,
    lowpass_biquad_coefficients,
    zero_phase_lowpass,
)
from transforms.model_input import MODEL_SAMPLE_RATE, to_model_input
from transforms.multiband import (
    MultibandAnalysis,
    analyse,
    analysis_frames,
    synthesise,
    to_input_rate,
)
from transforms.multiband_filters import mirroring
from transforms.multiband_stream import MultibandStreamAnalysis, synthesise_stream
from transforms.resample import Resampler, resample, resampled_length
from transforms.seeding import derive_seed
from transforms.stft import (
    check_geometry,
    end_padded_frames,
    frames_for_samples,
    istft,
    istft_samples,
    num_frames,
    stft,
    stft_frames,
)
from transforms.zero_phase_biquad_lowpass import ZeroPhaseBiquadLowPass

__all__ = [
    "AUDIO_EXTENSIONS",
    "MODEL_SAMPLE_RATE",
    "MULTICHANNEL_POLICIES",
    "REASONS",
    "AudioError",
    "AudioInfo",
    "AudioReader",
    "AugmentChain",
    "AugmentPlan",
    "Band",
    "BandParams",
    "BandParamsError",
    "MultibandAnalysis",
    "MultibandStreamAnalysis",
    "Resampler",
    "StreamingZeroPhaseLowpass",
    "ZeroPhaseBiquadLowPass",
    "analyse",
    "analysis_frames",
    "audio_info",
    "check_geometry",
    "derive_seed",
    "downmix_matrix",
    "end_padded_frames",
    "frames_for_samples",
    "istft",
    "istft_samples",
    "list_band_params",
    "load_audio",
    "load_band_params",
    "lowpass_biquad_coefficients",
    "mirroring",
    "num_frames",
    "open_audio",
    "resample",
    "resampled_length",
    "resolve_transform",
    "stft",
    "stft_frames",
    "synthesise",
    "synthesise_stream",
    "to_input_rate",
    "to_model_channels",
    "to_model_input",
    "zero_phase_lowpass",
]
