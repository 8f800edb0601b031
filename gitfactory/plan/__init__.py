"""The production plan: tasks, their lifecycle and every decision about them.

``tasks`` is the pure model and the fold of a task's events into its state;
``states`` keeps the folded states in the index; ``decisions`` reads and decides
under the store's compare-and-swap (add, claim, release, cancel, answer, expire);
``edits`` changes the plan by new events (retitle, depend, split, supersede);
``steps`` is what an agent pulls next and how it ends its step.

May import: ``gitfactory.config``, ``gitfactory.store`` and the ground floor.
"""
