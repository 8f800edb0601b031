"""Mailboxes: markdown messages between agents, roles and humans.

``messages`` is a message, its addresses and the records it becomes; ``mailbox``
sends and reads them (delivered, read and acknowledged are separate receipts),
answers inbox and thread queries, and exports an agent's read view;
``postmaster`` takes in messages committed with plain git on watched branches,
quarantines invalid ones and escalates overdue acknowledgements.

May import: ``gitfactory.plan``, ``gitfactory.config``, ``gitfactory.store`` and the
ground floor; not ``gitfactory.knowledge`` (a sibling on the same floor).
"""
