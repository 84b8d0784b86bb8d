"""The watcher runtime for the senses operators declare (:mod:`models.senses`).

:class:`~watchers.senses.kinds.KindWatcher` runs every :class:`~models.senses.WatchKind`
(one informer per kind), :class:`~watchers.senses.readings.ReadingsWatcher` every
:class:`~models.senses.PromQL` (one query per template per interval); webhook senses become
the routes of ``POST /v1/events`` (:func:`models.senses.webhook_routes`).
"""
