/**
 * Calls `onGone` once when the process that started this one with an IPC channel (`npm start`'s
 * launcher) is gone: the channel closes when its parent exits, SIGKILL or an out-of-memory kill
 * included. A part left running without its launcher would hold the port and the model's memory
 * until someone finds it. Does nothing for a process started without one (`npm run
 * start:orchestrator`, docker compose), which its own supervisor stops with a signal.
 */
export function onLauncherGone(onGone: () => void): void {
  if (process.channel === undefined) return;
  process.once("disconnect", onGone);
}
