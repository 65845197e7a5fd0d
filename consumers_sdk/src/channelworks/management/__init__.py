"""Management commands of the ``channelworks`` Django app (``runserver``)."""
