/*
 * The ES module form of channels/js/websocketbridge.js, for bundlers and <script type="module">:
 *
 *   import { WebSocketBridge } from "./websocketbridge.mjs";
 *
 * It runs the classic script (one implementation for both forms), which also sets the global
 * `channels`, and exports its names.
 */
import "./websocketbridge.js";

const api = globalThis.channels;

export const WebSocketBridge = api.WebSocketBridge;
export const ReconnectingSocket = api.ReconnectingSocket;
export default WebSocketBridge;
