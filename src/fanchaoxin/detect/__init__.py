"""Monitoring toolkit (fcx detect): detectors an enterprise runs over its own data to find 炒信."""
