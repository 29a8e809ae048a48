"""Installs tf_lowprec: sparse and low-precision training for Keras 3."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "tf_lowprec" / "__init__.py").read_text()
).group(1)

setup(
    name="tf_lowprec",
    version=VERSION,
    description=(
        "Keras 3 optimizers, quantizers and pruning for sparse and "
        "low-precision training (gRDA, HALP, SWALP, proximal methods)."
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tf_lowprec", "tf_lowprec.*"]),
    python_requires=">=3.11",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<4",
        "tensorflow-datasets>=4.9",
        "tensorboard>=2.21",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "tqdm>=4.60",
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6.100", "pytest-timeout>=2.3"],
        # Baselines we measure against; always run in a separate process
        # because importing TFMOT flips tf.keras to tf_keras process-wide.
        "tfmot": ["tensorflow-model-optimization>=0.8.1", "tf-keras>=2.21,<2.22"],
    },
    entry_points={
        "console_scripts": [
            "tf-lowprec=tf_lowprec.experiments.cli:main",
            "tf-lowprec-quickstart=tf_lowprec.quickstart:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
