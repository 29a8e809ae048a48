"""Shim: the package metadata lives in pyproject.toml (one source of truth)."""

from setuptools import setup

setup()
