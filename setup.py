"""Declares the Cython extensions; all other metadata lives in pyproject.toml."""

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "native._book",
        ["native/_book.pyx"],
        language="c++",
        include_dirs=["native", numpy.get_include()],
        extra_compile_args=["-O3", "-std=c++17"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    Extension("native._risk", ["native/_risk.pyx"], extra_compile_args=["-O3"]),
    Extension("fix_gateway._relay", ["fix_gateway/_relay.pyx"], extra_compile_args=["-O3"]),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "embedsignature": True,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
)
