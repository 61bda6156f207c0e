"""The engine: one track variant from its source to its stems and rows, with no Beam in it.

    job.py          Job, open_job: what a run decided at launch (config, resolved model, run id), carried to workers
    inference.py    the checkpoint resolved and loaded: ResolvedModel, load_model
    track.py        PreparedTrack: decoded, resampled and augmented into local scratch; MaskReader
    layout.py       the run's frame layout: single band or a UVR band table, chosen once
    frame_source.py, single_band.py, multi_band.py   frames by range, on host or device, and the stems' synthesis
    masks.py        TrackMasks: a track's model masks in a scratch file as the batcher returns them
    mixture.py      a mix run's mixture and targets, rebuilt from its draws
    assemble.py     stem files (output.clip applied) and spectrogram rows
    rows.py         the names of a run's stems and spectrogram columns
    records.py      fixed-size array slots in a scratch file
    one_track.py    the steps in order, for a notebook or a test: separate_track

``pipeline.stages`` drives the same steps from Beam's DoFns; ``pipeline.batchers`` gives each worker process
its one model. The engine uses no other part of ``pipeline`` than ``storage`` and ``scratch``.
"""
