"""The 炒信 blacklist registry: entries, their lifecycle, evidence, and the change feed."""
