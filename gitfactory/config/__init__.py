"""What factory.yaml says: the factory's name, its workflows (state machines of
steps), its gates, its agents and how they are dispatched, and the mail settings.

Parsed only from the factory branch (``factory_yaml.load``), checked on the way in,
and written back in one checked commit. These are plain values; the floors above
act on them (the plan walks the workflows, qa runs the gates, run starts agents).

May import: ``gitfactory.store`` and the ground floor.
"""
