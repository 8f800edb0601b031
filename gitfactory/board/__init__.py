"""What a person sees and does: the live web board, the one-file HTML report, and
the views they (and `gitfactory top`) render.

``views.py`` (columns and cards, agents, the log), ``timeline.py`` (one task's
steps, gates, mail, artifacts) and ``graph.py`` (the dependency graph, laid out)
turn the index into plain values; ``actions.py`` is what a person may do from a
page (answer, retry, cancel, reprioritise) through the same library calls as the
CLI; ``pages.py`` renders the Jinja2 templates (autoescaped); ``app.py`` is the
Starlette app and its live event stream, behind ``guard.py`` (Host, Origin and the
per-run token); ``serve.py`` runs it on 127.0.0.1; ``report.py`` writes one
self-contained HTML file; ``dashboard.py`` is the frame `gitfactory top` draws.

May import every floor below (the runtime's run book among them); the CLI, on the
floor above, starts it.
"""
