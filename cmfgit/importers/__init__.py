"""Importers of other tools' metadata (DVC) into cmfgit records."""
