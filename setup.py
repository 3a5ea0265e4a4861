"""The optional compiled accelerator; everything else is in pyproject.toml.

``optional=True``: where the C compiler is missing or fails (``CC=/bin/false``),
setuptools warns and installs sockdiff without it, and sockdiff runs its
pure-Python decoders (see sockdiff/_accel.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sockdiff._speedups",
            sources=["sockdiff/_speedups.c"],
            extra_compile_args=["-Wall", "-Wextra", "-std=c11"],
            optional=True,
        )
    ]
)
