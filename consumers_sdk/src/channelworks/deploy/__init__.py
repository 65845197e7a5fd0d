"""From a Django project on a laptop to a RealtimeApp on a cluster: what the ``channelworks``
command's ``init``, ``build``, ``manifest`` and ``status`` do, apart from their options.

- :mod:`~channelworks.deploy.project`: where a project is and what it is called;
- :mod:`~channelworks.deploy.checking` (with :mod:`~channelworks.deploy.import_probe`, run in a
  child process): do its settings and routing import;
- :mod:`~channelworks.deploy.dockerfile` (pure), :mod:`~channelworks.deploy.context`,
  :mod:`~channelworks.deploy.engines`: the worker image's build context and its build;
- :mod:`~channelworks.deploy.manifest` (pure): the ``RealtimeApp`` to apply;
- :mod:`~channelworks.deploy.summary` (pure), :mod:`~channelworks.deploy.cluster`: an app's status;
- :mod:`~channelworks.deploy.scaffold`: a new project from the template in ``template/``.

Nothing here is imported by the SDK's runtime (consumers, layers, workers).
"""
