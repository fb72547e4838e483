/**
 * How a part (orchestrator, gpu-worker) tells the `npm start` launcher that it has started, over
 * the IPC channel the launcher opens: a part that stops before it ever started is a startup
 * failure (bad configuration, a model that cannot load), which restarting would only repeat; one
 * that stops after it started has crashed, and is restarted.
 */
export const readyMessage = "secure-llm-pool:part-ready";

/** Sends {@link readyMessage} when a launcher started this process; does nothing otherwise. */
export function announceReady(): void {
  if (process.send === undefined || !process.connected) return;
  // A launcher gone meanwhile is no error of this part's: the callback takes the send's error.
  process.send(readyMessage, undefined, undefined, () => {});
  // The channel must not keep a stopping part alive.
  process.channel?.unref();
}
