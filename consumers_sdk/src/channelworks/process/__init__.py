"""What every Channelworks process shares, whatever its job (interface, worker, operator, dev):
its log lines (:mod:`channelworks.process.logs`)."""
