"""Organisations (the platform, government departments, participating enterprises) and their API keys."""
