"""Single source of the library version, written into every checkpoint's metadata."""

__version__ = "0.1.0"
