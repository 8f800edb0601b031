"""The runtime: the watcher daemon and what it starts.

``watch`` and ``hooks`` notice commits in every worktree; ``daemon`` is the loop
(detect, ingest, fold, decide, act); ``dispatch`` starts agents and gates on ready
steps, follows them and ends their steps, and recovers after a crash; ``runs`` are
the processes it started, ``worktrees`` their workspaces, ``prompt`` what they are
told; ``service`` runs the daemon in the background or under systemd.

May import every floor below: ``gitfactory.qa``, ``gitfactory.mail``,
``gitfactory.knowledge``, ``gitfactory.plan``, ``gitfactory.config``,
``gitfactory.store`` and the ground floor.
"""
