"""The ahserver version whose interface this package follows."""

__version__ = "1.2.0"
