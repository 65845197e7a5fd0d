"""``python -m channelworks_operator``: the same as the ``channelworks-operator`` command."""

import sys

from channelworks_operator.main import main

sys.exit(main())
