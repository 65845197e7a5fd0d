"""Local dev mode: what ``channelworks dev`` and ``manage.py runserver`` run.

- :mod:`channelworks.dev.config` — the run's settings (:class:`~channelworks.dev.config.DevConfig`);
- :mod:`channelworks.dev.supervisor` — starts the processes, prints the URL, reloads, stops;
- :mod:`channelworks.dev.child` — the entry point of each process it starts;
- :mod:`channelworks.dev.serving` — the interface server and workers in those processes;
- :mod:`channelworks.dev.runtimes` — finds the interface server and the worker runtime through
  the entry points their packages register (the SDK imports neither);
- :mod:`channelworks.dev.watcher` — notices changed files.
"""
