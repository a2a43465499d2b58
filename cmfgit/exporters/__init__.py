"""Exporters to other tools' formats: OpenLineage (openlineage.py) and W3C PROV (prov.py).

Each module turns execution records into the target format with pure functions, and
has one small function per destination (a file, standard output, an HTTP endpoint).
The CMF export (``cmfgit/cmf_export.py``) predates this family and stays where it is.
"""
