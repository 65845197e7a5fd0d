"""A page written for Channels 1 (it loads Channels 1's ``websocketbridge.js``), ported unchanged,
with the demultiplexing consumers it talks to: the browser test of the JavaScript client."""
