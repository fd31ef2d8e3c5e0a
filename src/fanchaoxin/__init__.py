"""fanchaoxin (反炒信): the open platform for the joint action against credit hyping (炒信)."""

# The one place of the version: pyproject.toml reads it; a cut release is added to migrations/releases.yaml.
__version__ = "0.2.0"
