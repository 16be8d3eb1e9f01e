"""The engine: ``simulate`` (validation, the run's spec), ``compat`` (every
compatibility rule), ``plan`` (per-chain sizes and the memory plan), ``kernel`` (the
compiled programs), ``driver`` (the host loop), with ``checkpoint``, ``shards``,
``host`` and ``progress`` beside the driver. docs/ARCHITECTURE.md draws the layers.
(Nothing is imported here, so any module of the package may import one of these
without importing the rest.)"""
