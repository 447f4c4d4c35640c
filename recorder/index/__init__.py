"""The SQL index: models, the migration runner and the store API the proxy and auditor tools call.

This package imports nothing of its own: ``recorder.index.query`` (the query language) and
``recorder.index.hits`` (a search hit) are used by ``recorder search --server``, which must start
without SQLAlchemy (about 250 ms of imports on this project's machine). Import the submodules.
"""
