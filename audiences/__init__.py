"""People side of the retargeting exporter: normalize, hash and export customer identifiers per platform."""
