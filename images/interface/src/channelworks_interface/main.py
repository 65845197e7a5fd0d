"""``channelworks-interface``: read the configuration once, build the layer, serve."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from channelworks.exceptions import ConfigurationError
from channelworks.layers import env as layer_env
from channelworks.layers import metrics as layer_metrics
from channelworks.process import logs
from channelworks_interface import config as config_module
from channelworks_interface import metrics, server

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the interface server until it is stopped; return the process exit code."""
    try:
        config = config_module.load(os.environ, sys.argv[1:] if argv is None else argv)
        logs.configure(config.log_format, config.log_level)
        channel_layer = layer_env.build_layer(config.layer)
    except ConfigurationError as error:
        print(f"channelworks-interface: {error}", file=sys.stderr)
        return 2
    if config.layer.mode == "memory":
        logger.warning(
            "using the in-memory channel layer: only workers in this process can answer; set "
            "CHANNELWORKS_REDIS_URL (and CHANNELWORKS_REDIS_MODE) to reach other processes"
        )
    registry = CollectorRegistry()
    layer_metrics.ChannelFullCollector(channel_layer, registry)
    return server.InterfaceServer(
        config, channel_layer, metrics.Metrics(registry, process_collectors=True)
    ).run(tune_gc=True)


if __name__ == "__main__":
    sys.exit(main())
