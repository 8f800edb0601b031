"""Federation: other factories, their parcels, and what this one accepts of them.

``inbound`` takes in what peers delivered (checked, judged by the accept policy,
kept, answered with receipts), with ``work`` holding one pass's records and
``handlers`` and ``requests`` saying what each type of parcel becomes. ``news``
sends the peers word of what became of their requests and messages; ``exchange``
is one round with every peer (fetch, take in, send word, publish, push), which the
CLI and the daemon run. The transport itself is ``gitfactory.store.courier``.

May import: ``gitfactory.mail``, ``gitfactory.knowledge``, ``gitfactory.plan``,
``gitfactory.config``, ``gitfactory.store`` and the ground floor.
"""
