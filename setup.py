"""stemforge: audio corpora to separated stems and spectrogram shards with Apache Beam.

This file is also what Beam's ``--setup_file`` installs on remote workers.
"""

from setuptools import find_packages, setup

# the repository's top-level folders, installed as stemforge.<folder> (setuptools' package_dir)
FOLDERS = ("pipeline", "transforms", "model", "shards", "training")

setup(
    name="stemforge",
    version="0.1.0",
    description="Beam pipeline: augment audio, separate it with CascadedNet, write stems and Parquet shards",
    python_requires=">=3.11",
    # the repository's folders, installed under one name: stemforge.model, stemforge.pipeline, ... (nothing of
    # ours at the top of site-packages, where `model` or `pipeline` would collide with other distributions)
    packages=[*find_packages(include=["stemforge", "stemforge.*"]),
              *(f"stemforge.{name}" for name in find_packages(include=[f"{f}*" for f in FOLDERS]))],
    package_dir={f"stemforge.{folder}": folder for folder in FOLDERS},
    package_data={"stemforge.pipeline": ["py.typed"], "stemforge.transforms": ["bandparams/*.json"],
                  "stemforge.model": ["uvr_model_data.json", "weights/*.safetensors", "weights/README.md"]},
    install_requires=[
        "torch>=2.6",
        "apache-beam>=2.72",
        "numpy>=1.26",
        "scipy>=1.11",
        "pyarrow>=16",
        "soundfile>=0.12.1",
        "soxr>=0.3.7",
        "audiomentations>=0.40",
        "fsspec>=2023.12",
        "pyyaml>=6.0",
        "pydantic>=2.6",
        "safetensors>=0.4",
        "rich>=13",
        "matplotlib>=3.8",
        "samplerate>=0.2",
        "av>=14",  # FFmpeg in its wheels: MP3, AAC/M4A, WebM, WMA, ALAC (transforms/ffmpeg_io.py)
    ],
    extras_require={
        "aws": ["s3fs>=2023.12"],
        "gcp": ["gcsfs>=2023.12"],
        "azure": ["adlfs>=2023.12"],
        "dask": ["dask>=2024.4.2", "distributed>=2024.4.2"],
        "train": ["tensorboard>=2.14"],
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.2",
            "hypothesis>=6.100",
            "librosa>=0.10",
            "moto[server]>=5.0",
            "s3fs>=2023.12",
            "aiohttp>=3.9",
            # drives Debian's chromium (no browser download) for the report's browser test
            "playwright>=1.40",
            # the readers docs/datasets.md promises the shards open in, with their shape
            "datasets>=4.0",
            "duckdb>=1.1",
            "polars>=1.10",
            "pandas>=2.2",
            "dask>=2024.4.2",
            "distributed>=2024.4.2",
            "tensorboard>=2.14",
            # audio-separator's VR modules, the independent UVR reference (installed --no-deps by the Makefile)
            "pydub>=0.25",
            "tqdm>=4.60",
            "six>=1.16",
            "audioread>=3.0",
        ],
    },
    entry_points={"console_scripts": ["stemforge=stemforge.pipeline.cli:main"]},
)
