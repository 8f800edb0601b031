"""The storage floor: the factory branch and everything that reads or writes it.

Git access (``git``), the compare-and-swap store of plumbing commits (``branch``),
record kinds, paths and their bounded decoding (``records``, ``frontmatter``,
``yaml``, ``schemas``), ids and the clock, the execution log (``log``), markdown
folders changed in place (``folder``), addresses (``actors``), the ``Factory``
handle, and the derived SQLite index (``index``, with its mail tables in
``index_mail``).

May import: ``gitfactory.errors``, ``gitfactory.resources`` and itself. Nothing
here knows what a task's events mean or what factory.yaml says.
"""
