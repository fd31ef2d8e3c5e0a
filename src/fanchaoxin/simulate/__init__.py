"""Realistic synthetic marketplace data with planted 炒信 and its ground truth (fcx simulate)."""
