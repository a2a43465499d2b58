"""The web UI (cmfgit ui) and the static site (cmfgit site build)."""
