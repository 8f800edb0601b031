"""Quality assurance: gates (commands, judges, scenarios) and the merge step.

``gates`` judges a gate run and writes its report; ``scenarios`` are the markdown
user journeys QA agents play, ``playbook`` the process that plays them; ``merge``
integrates a task's branch into its target.

May import: ``gitfactory.mail``, ``gitfactory.knowledge``, ``gitfactory.plan``,
``gitfactory.config``, ``gitfactory.store`` and the ground floor.
"""
