"""Subjects (主体): who can be listed, their identifiers, liable persons, and entity resolution."""
