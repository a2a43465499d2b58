"""The web UI: the read-only local server (``cmfgit ui``), its JSON API, and the static page.

``api.py`` answers each endpoint as plain Python over a ``CmfQuery`` (shared with
``cmfgit site build``); ``server.py`` serves it and ``static/`` over HTTP.
"""
