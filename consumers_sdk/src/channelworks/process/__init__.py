"""What every Channelworks process shares, whatever its job (interface, worker, operator, the
layer's own settings, dev): reading its settings from the environment
(:mod:`channelworks.process.env`), writing its log lines (:mod:`channelworks.process.logs`),
serving its probes and metrics (:mod:`channelworks.process.probes`) and saying which build it runs
(:mod:`channelworks.process.build`)."""
