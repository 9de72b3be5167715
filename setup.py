"""The compiled modules (the metadata is in pyproject.toml): the fast passes of ``feedgen.text`` and the
writers, and the CSV reader of ``feedgen.sources``; plain C against the CPython API, built by
``pip install`` with the machine's C compiler."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "feedgen._speedups",
            sources=["feedgen/_speedups.c"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra"],
        ),
        Extension(
            "feedgen._csvscan",
            sources=["feedgen/_csvscan.c"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra"],
        ),
    ]
)
