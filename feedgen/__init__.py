"""Catalog side of the retargeting exporter: load, clean, validate, label and publish product feeds."""

__version__ = "0.1.0"
