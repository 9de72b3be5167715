"""The one compiled module (the metadata is in pyproject.toml): the fast pass of ``feedgen.text.clean_text``,
plain C against the CPython API, built by ``pip install`` with the machine's C compiler."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "feedgen._speedups",
            sources=["feedgen/_speedups.c"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra"],
        )
    ]
)
