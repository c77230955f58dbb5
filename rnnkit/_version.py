"""The version, in one place: the package metadata and every file rnnkit writes read it here."""

__version__ = "0.4.0"
