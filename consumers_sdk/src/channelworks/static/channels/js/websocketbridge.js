/*
 * Channelworks' WebSocket client, with the API of Channels 1.1's `WebSocketBridge`.
 *
 * A classic script: load it with {% static "channels/js/websocketbridge.js" %} and use the global
 * `channels.WebSocketBridge` (and `channels.ReconnectingSocket`). Bundlers import
 * "channels/js/websocketbridge.mjs" instead; CommonJS gets the same names from `require()`.
 *
 *   const bridge = new channels.WebSocketBridge();
 *   bridge.connect("/ws/");                       // same host, ws: or wss: as the page
 *   bridge.listen(function (message, stream) {}); // frames of no demultiplexed stream
 *   bridge.demultiplex("mystream", function (payload, stream) {});
 *   bridge.stream("mystream").send({...});        // {"stream": "mystream", "payload": {...}}
 *   bridge.send({...});                           // a JSON frame as it is
 *
 * The socket reconnects by itself after it closes, waiting an exponentially growing, capped and
 * jittered delay; frames sent while it is not open are queued and sent once it is. docs/sdk.md
 * lists the options.
 *
 * Recovery after reconnect (docs/delivery.md), with no application code: the socket remembers
 * the epoch and offset of the last message of each group with history it got, and the session
 * token the server gave it; it sends them when it reconnects (the `cw` URL parameter), so the
 * server resumes its session (group memberships, channel_session) and sends exactly what it
 * missed, in order, before live messages. Messages at or before a known offset are dropped. If
 * a stream's history is gone, the socket fires "historygone" ({stream}) so the page can reload
 * its state. Option `recover: false` turns it off.
 */
(function (root, factory) {
  "use strict";
  var api = factory();
  if (typeof module === "object" && module && typeof module.exports === "object") {
    module.exports = api;
  }
  if (root) {
    root.channels = root.channels || {};
    root.channels.WebSocketBridge = api.WebSocketBridge;
    root.channels.ReconnectingSocket = api.ReconnectingSocket;
  }
})(typeof globalThis !== "undefined" ? globalThis : typeof self !== "undefined" ? self : null, function () {
  "use strict";

  var CONNECTING = 0;
  var OPEN = 1;
  var CLOSING = 2;
  var CLOSED = 3;

  var DEFAULTS = {
    minReconnectionDelay: 1000, // ms before the first reconnection attempt (before jitter)
    maxReconnectionDelay: 30000, // the delay never grows beyond this
    reconnectionDelayGrowFactor: 2, // each failed attempt multiplies the delay by this
    jitter: 0.5, // each delay is shortened by a random fraction of up to this much (0..1)
    connectionTimeout: 10000, // ms an opening handshake may take before it is abandoned
    maxRetries: Infinity, // reconnection attempts in a row before giving up
    maxQueuedMessages: 1000, // frames kept while the socket is not open; beyond: send() throws
    flushBurst: 16, // queued frames sent at once when a socket opens...
    flushRate: 40, // ...then this many a second (0: all at once); within the interface's limits
    debug: false, // log what the socket does on the console
    WebSocket: null, // the WebSocket class to use (default: the global one)
    recover: true, // resume the session and recover missed group messages after a reconnect
  };

  function settings(options) {
    var chosen = {};
    var name;
    for (name in DEFAULTS) {
      chosen[name] = DEFAULTS[name];
    }
    for (name in options || {}) {
      if (Object.prototype.hasOwnProperty.call(options, name) && options[name] !== undefined) {
        chosen[name] = options[name];
      }
    }
    if (!(chosen.jitter >= 0 && chosen.jitter <= 1)) {
      throw new RangeError("jitter must be between 0 and 1, got " + chosen.jitter);
    }
    if (!(chosen.minReconnectionDelay >= 0) || !(chosen.maxReconnectionDelay >= chosen.minReconnectionDelay)) {
      throw new RangeError("need 0 <= minReconnectionDelay <= maxReconnectionDelay");
    }
    return chosen;
  }

  /** The delay before reconnection attempt `attempt` (0, 1, ...): capped backoff with jitter. */
  function reconnectionDelay(options, attempt, random) {
    var grown = options.minReconnectionDelay * Math.pow(options.reconnectionDelayGrowFactor, attempt);
    var capped = Math.min(options.maxReconnectionDelay, grown);
    return capped * (1 - options.jitter * (random === undefined ? Math.random() : random));
  }

  /** `url` as a ws: or wss: URL: none is this host's root, a path or http(s) URL is converted. */
  function socketUrl(url, location) {
    if (location === undefined && typeof window !== "undefined") {
      location = window.location;
    }
    var page = location ? location.href : undefined;
    var resolved = new URL(url === undefined || url === null ? "/" : String(url), page);
    if (resolved.protocol === "http:") {
      resolved.protocol = "ws:";
    } else if (resolved.protocol === "https:") {
      resolved.protocol = "wss:";
    }
    return resolved.href;
  }

  /** `url` with the recovery request (base64url JSON) as its `cw` query parameter. */
  function recoveryUrl(url, token, positions) {
    var body = JSON.stringify({ v: 1, t: token, s: positions });
    var encoded = btoa(body).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    var resolved = new URL(url);
    resolved.searchParams.set("cw", encoded);
    return resolved.href;
  }

  function eventTargetBase() {
    if (typeof EventTarget === "function") {
      return EventTarget;
    }
    throw new Error("channels.WebSocketBridge needs EventTarget (any browser, Node.js 15+)");
  }

  function makeEvent(type, fields) {
    var event = new Event(type);
    var name;
    for (name in fields || {}) {
      Object.defineProperty(event, name, { value: fields[name], enumerable: true });
    }
    return event;
  }

  /**
   * A WebSocket that comes back: the same object across reconnections, so listeners added with
   * addEventListener (or on* properties) keep working. It has WebSocket's surface: url,
   * protocol, readyState, send(), close(), onopen/onmessage/onclose/onerror, and the events
   * "open", "message", "close", "error"; `reconnectAttempts` counts the attempts in a row.
   */
  class ReconnectingSocket extends eventTargetBase() {
    constructor(url, protocols, options) {
      super();
      this.url = url;
      this.protocols = protocols;
      this.options = settings(options);
      this.reconnectAttempts = 0;
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      this._socket = null;
      this._queue = [];
      this._timer = null;
      this._flushTimer = null;
      this._handshakeTimer = null;
      this._closedByUser = false;
      this.positions = {}; // stream -> [epoch, offset] of the last message delivered
      this.resumeToken = null;
      this._pendingAt = null; // the position announced for the next binary frame
      this._open();
    }

    get readyState() {
      if (this._socket) {
        return this._socket.readyState;
      }
      return this._closedByUser ? CLOSED : CONNECTING;
    }

    get protocol() {
      return this._socket ? this._socket.protocol : "";
    }

    get bufferedAmount() {
      return this._socket ? this._socket.bufferedAmount : 0;
    }

    /** Send now if open; else queue the frame for the next open socket. */
    send(data) {
      if (this._closedByUser) {
        throw new Error("the socket is closed (by close(), or after maxRetries); call connect() again");
      }
      if (this._socket && this._socket.readyState === OPEN && this._queue.length === 0) {
        this._socket.send(data);
        return;
      }
      if (this._queue.length >= this.options.maxQueuedMessages) {
        throw new Error(
          "the socket is not open and " + this._queue.length + " frames are already queued"
        );
      }
      this._queue.push(data);
    }

    /** Close for good: no reconnection, queued frames are dropped. */
    close(code, reason) {
      this._closedByUser = true;
      this._queue = [];
      clearTimeout(this._timer);
      clearTimeout(this._flushTimer);
      clearTimeout(this._handshakeTimer);
      if (this._socket && this._socket.readyState < CLOSING) {
        this._socket.close(code === undefined ? 1000 : code, reason);
      }
    }

    /** Drop the current socket and connect again at once (e.g. after the network came back). */
    reconnect() {
      this._closedByUser = false;
      this.reconnectAttempts = 0;
      clearTimeout(this._timer);
      var old = this._socket;
      this._socket = null;
      if (old && old.readyState < CLOSING) {
        old.close(4000, "reconnect");
      }
      this._open();
    }

    _log() {
      if (this.options.debug && typeof console !== "undefined") {
        console.debug.apply(console, ["[channels.ReconnectingSocket]"].concat([].slice.call(arguments)));
      }
    }

    _emit(type, fields) {
      var event = makeEvent(type, fields);
      var handler = this["on" + type];
      if (typeof handler === "function") {
        handler.call(this, event);
      }
      this.dispatchEvent(event);
    }

    _open() {
      var Socket = this.options.WebSocket || (typeof WebSocket === "function" ? WebSocket : null);
      if (!Socket) {
        throw new Error("no WebSocket class: pass options.WebSocket");
      }
      this._log("connecting to", this.url, "attempt", this.reconnectAttempts);
      var url = this.options.recover ? recoveryUrl(this.url, this.resumeToken, this.positions) : this.url;
      var socket = this.protocols === undefined ? new Socket(url) : new Socket(url, this.protocols);
      this._socket = socket;
      var self = this;
      this._handshakeTimer = setTimeout(function () {
        self._log("handshake timed out");
        socket.close();
      }, this.options.connectionTimeout);
      socket.onopen = function () {
        clearTimeout(self._handshakeTimer);
        self.reconnectAttempts = 0;
        self._flush(socket, self.options.flushBurst);
        self._emit("open");
      };
      socket.onmessage = function (event) {
        var data = self.options.recover ? self._recovered(event.data) : event.data;
        if (data !== undefined) {
          self._emit("message", { data: data, origin: event.origin, lastEventId: "" });
        }
      };
      socket.onerror = function () {
        self._emit("error");
      };
      socket.onclose = function (event) {
        clearTimeout(self._handshakeTimer);
        self._emit("close", { code: event.code, reason: event.reason, wasClean: event.wasClean });
        if (self._socket !== socket || self._closedByUser) {
          return;
        }
        self._scheduleReconnect();
      };
    }

    /**
     * Send what was queued while no socket was open, in order: `allowance` frames now, the rest
     * at `flushRate` a second, so a backlog stays within the interface's per-socket burst and
     * rate (its MESSAGE_BURST and MESSAGE_RATE) instead of getting the socket closed 1008.
     * Frames sent meanwhile queue behind; what a closed socket did not take waits for the next.
     */
    _flush(socket, allowance) {
      if (this._socket !== socket || socket.readyState !== OPEN) {
        return;
      }
      var paced = this.options.flushRate > 0;
      while (this._queue.length > 0 && (!paced || allowance > 0)) {
        socket.send(this._queue.shift());
        allowance -= 1;
      }
      if (this._queue.length > 0) {
        var self = this;
        clearTimeout(this._flushTimer);
        this._flushTimer = setTimeout(function () {
          self._flush(socket, 1);
        }, 1000 / this.options.flushRate);
      }
    }

    /** A frame as the application sees it, or undefined: a control frame or a duplicate. */
    _recovered(data) {
      if (typeof data !== "string") {
        var at = this._pendingAt;
        this._pendingAt = null;
        return at && !this._advance(at.s, at.e, at.o) ? undefined : data;
      }
      if (data.lastIndexOf('{"$cw":', 0) !== 0) {
        return data;
      }
      var control;
      try {
        control = JSON.parse(data);
      } catch (error) {
        return data;
      }
      switch (control.$cw) {
        case "m":
          return this._advance(control.s, control.e, control.o) ? control.text : undefined;
        case "at":
          this._pendingAt = control;
          return undefined;
        case "session":
          this.resumeToken = control.t;
          this._emit("session", { resumed: Boolean(control.resumed) });
          return undefined;
        case "recovered":
          this._emit("recovered", { stream: control.s, offset: control.o, count: control.n });
          return undefined;
        case "gone":
          if (control.e) {
            this.positions[control.s] = [control.e, control.o];
          } else {
            delete this.positions[control.s];
          }
          this._log("history gone for", control.s);
          this._emit("historygone", { stream: control.s });
          return undefined;
        default:
          return data;
      }
    }

    /** Record a stream message's position; false when the client has it already. */
    _advance(stream, epoch, offset) {
      var known = this.positions[stream];
      if (known && known[0] === epoch && offset <= known[1]) {
        return false;
      }
      this.positions[stream] = [epoch, offset];
      return true;
    }

    _scheduleReconnect() {
      if (this.reconnectAttempts >= this.options.maxRetries) {
        this._log("giving up after", this.reconnectAttempts, "attempts");
        this._closedByUser = true;
        this._socket = null;
        return;
      }
      var delay = reconnectionDelay(this.options, this.reconnectAttempts);
      this.reconnectAttempts += 1;
      this._log("reconnecting in", Math.round(delay), "ms");
      var self = this;
      this._timer = setTimeout(function () {
        self._open();
      }, delay);
    }
  }

  ReconnectingSocket.CONNECTING = CONNECTING;
  ReconnectingSocket.OPEN = OPEN;
  ReconnectingSocket.CLOSING = CLOSING;
  ReconnectingSocket.CLOSED = CLOSED;

  /**
   * Channels 1.1's bridge: JSON frames over a ReconnectingSocket, demultiplexed by "stream".
   * `new WebSocketBridge(options)` takes the socket options (used by connect() unless it gets
   * its own) and `onopen`, called on every open socket.
   */
  class WebSocketBridge {
    constructor(options) {
      this.options = Object.assign({}, options || {});
      this.socket = null;
      this.streams = {};
      this.default_cb = null;
    }

    /** Open (and keep open) a socket to `url`: a path on this host, or a full ws(s) URL. */
    connect(url, protocols, options) {
      if (this.socket) {
        this.socket.close();
      }
      var chosen = Object.assign({}, this.options, options || {});
      var onopen = chosen.onopen;
      delete chosen.onopen;
      this.socket = new ReconnectingSocket(socketUrl(url), protocols, chosen);
      var self = this;
      this.socket.addEventListener("message", function (event) {
        self._receive(event);
      });
      if (typeof onopen === "function") {
        this.socket.addEventListener("open", onopen);
      }
      return this.socket;
    }

    /** Call `cb(message, null)` for each frame not taken by a demultiplexed stream. */
    listen(cb) {
      this.default_cb = cb || null;
    }

    /** Call `cb(payload, stream)` for each frame {"stream": stream, "payload": payload}. */
    demultiplex(stream, cb) {
      this.streams[stream] = cb;
    }

    /** Send `data` as one JSON frame. */
    send(data) {
      this._socket().send(JSON.stringify(data));
    }

    /** A sender for one stream: `.send(payload)` sends {"stream": name, "payload": payload}. */
    stream(name) {
      var self = this;
      return {
        send: function (payload) {
          self.send({ stream: name, payload: payload });
        },
      };
    }

    /** Close the socket for good. */
    close(code, reason) {
      if (this.socket) {
        this.socket.close(code, reason);
      }
    }

    _socket() {
      if (!this.socket) {
        throw new Error("call connect() before send()");
      }
      return this.socket;
    }

    _receive(event) {
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        message = event.data; // not JSON: listen() gets the frame as it is
      }
      var isObject = message !== null && typeof message === "object";
      if (isObject && message.stream !== undefined && typeof this.streams[message.stream] === "function") {
        this.streams[message.stream](message.payload, message.stream);
      } else if (typeof this.default_cb === "function") {
        this.default_cb(message, null);
      }
    }
  }

  return {
    WebSocketBridge: WebSocketBridge,
    ReconnectingSocket: ReconnectingSocket,
    reconnectionDelay: reconnectionDelay,
    socketUrl: socketUrl,
    recoveryUrl: recoveryUrl,
  };
});
