"""The add-on's user interface; ``CLASSES`` lists its panels for registration."""

from .panels import CLASSES

__all__ = ["CLASSES"]
