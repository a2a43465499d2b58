"""Importers of other tools' history (DVC, MLflow) into cmfgit records."""
