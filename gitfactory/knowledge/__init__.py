"""What the factory knows and keeps: artifacts (files a task produced, stored as git
blobs with a manifest record), living documents (markdown every prompt includes)
and session summaries (what a finished task went through, and the history
document made from them).

May import: ``gitfactory.plan``, ``gitfactory.config``, ``gitfactory.store`` and the
ground floor; not ``gitfactory.mail`` (a sibling on the same floor).
"""
