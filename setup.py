"""fer-edge packaging: the `edge` package and nothing else at top level.

The wheel holds the runtime and its shipped emotion model (edge/model/, package data); the training
code in the repository's models/ folder is not installed (its dependencies are the `train` extra).
"""
from pathlib import Path

from setuptools import find_packages, setup

about: dict = {}
exec((Path(__file__).parent / "edge" / "__init__.py").read_text(), about)

setup(
    name="fer-edge",
    version=about["__version__"],
    description="Facial-expression recognition on Raspberry Pi / Jetson, publishing emotion events over MQTT",
    long_description=(Path(__file__).parent / "README.md").read_text() if (Path(__file__).parent / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["edge", "edge.*"]),
    package_data={"edge": ["schemas/*.json", "sources/demo_data/*", "model/*.tflite", "model/*.json",
                           # the dashboard's page: plain HTML/JS/CSS, served from the installed package
                           "ops/dashboard/static/*.html", "ops/dashboard/static/*.js", "ops/dashboard/static/*.css",
                           "ops/dashboard/static/*.svg"]},
    install_requires=[
        "numpy>=1.23",
        "opencv-python-headless>=4.8,<5",   # OpenCV 5 dropped the Haar cascades
        # LiteRT where wheels exist (x86_64, aarch64 with Python 3.9-3.12); else tflite-runtime / tensorflow.lite
        "ai-edge-litert>=1.2; platform_machine in 'x86_64 aarch64 AMD64 arm64'",
        "paho-mqtt>=2.0,<3",
        "pyyaml>=6.0",
        "pydantic>=2.5,<3",
    ],
    extras_require={
        "picamera": ["picamera2"],
        "dashboard-pg": ["psycopg[binary]>=3.1"],   # `fer-edge dashboard --store postgresql://...`
        # pinned: the recipes' figures were made with exactly these (models/recipes/*.yaml); Keras 3 is what
        # models/fit.py needs (TensorFlow here; on a GPU machine the same keras wheel runs on PyTorch)
        "train": ["tensorflow-cpu==2.21.0; platform_machine=='x86_64'", "tensorflow==2.21.0; platform_machine!='x86_64'",
                  "keras==3.15.1",
                  "openvino==2026.4.1"],   # teacher A (training-time distillation only; models/teachers.py)
        # psutil: CPU and memory figures of bench/dashboard.py and bench/fleet.py;
        # selenium: drives Debian's chromium + chromium-driver (apt) in the dashboard's browser tests
        # psycopg: the dashboard's history tests and bench/history.py against a real PostgreSQL server (apt)
        # jinja2: renders the Home Assistant templates in tests/test_mqtt_discovery.py;
        # pytest-xdist: the README's test command runs two test files at a time (most tests wait, not compute)
        "test": ["pytest>=7", "pytest-xdist>=3", "ruff>=0.4", "hypothesis>=6", "jsonschema>=4", "psutil",
                 "selenium>=4.10", "psycopg[binary]>=3.1", "jinja2"],
    },
    entry_points={"console_scripts": ["fer-edge=edge.cli:main"]},
)
