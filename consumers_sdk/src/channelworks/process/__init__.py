"""What every Channelworks process shares, whatever its job (interface, worker, operator, the
layer's own settings, dev): reading its settings from the environment
(:mod:`channelworks.process.env`), writing its log lines (:mod:`channelworks.process.logs`) and
serving its probes and metrics (:mod:`channelworks.process.probes`)."""
