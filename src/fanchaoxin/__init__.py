"""fanchaoxin (反炒信): the open platform for the joint action against credit hyping (炒信)."""

__version__ = "0.1.0"
