"""What every Channelworks process shares, whatever its job (interface, worker, operator, the
layer's own settings, dev): reading its settings from the environment
(:mod:`channelworks.process.env`) and writing its log lines (:mod:`channelworks.process.logs`)."""
