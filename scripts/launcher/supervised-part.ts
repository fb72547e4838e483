import { type ChildProcess, spawn } from "node:child_process";
import type { Logger } from "../../shared/log.js";
import { readyMessage } from "../../shared/process/ready-signal.js";
import { type RestartBackoff, restartBackoff, restartDelayMs } from "./restart-backoff.js";

/** How a part's process ended. */
export interface PartExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SupervisedPartOptions {
  /** The part's name (`gpu-worker`, `orchestrator`), for the log. */
  name: string;
  /** The part's entry script. */
  entry: string;
  env: NodeJS.ProcessEnv;
  /**
   * Whether a part that stops by itself after it started is started again, after a wait that
   * grows with each restart in a row (see {@link restartBackoff}).
   */
  restart: boolean;
  /** The waits between restarts; default {@link restartBackoff}. */
  backoff?: RestartBackoff;
  log: Logger;
  /**
   * Called when the part stopped by itself and will not be started again: `restart` is off, or
   * its first start failed (`started` false: bad configuration or a model that cannot load, which
   * a restart would only repeat).
   */
  onGiveUp(exit: PartExit, started: boolean): void;
}

/** One run of the part's process. */
interface Run {
  child: ChildProcess;
  spawnedAt: number;
  /** When the part said it had started; `undefined` until then. */
  readyAt?: number;
}

/**
 * One part of the `npm start` stack as a child process, restarted with backoff when it stops by
 * itself (a llama.cpp crash, an out-of-memory kill). Each part says it has started with
 * {@link readyMessage} over an IPC channel; through the same channel it notices when the launcher
 * is gone (killed with SIGKILL), and stops (`shared/process/launcher-gone.ts`).
 */
export class SupervisedPart {
  readonly #options: SupervisedPartOptions;
  #run: Run | undefined;
  /** Restarts in a row since the part last ran stably. */
  #restarts = 0;
  #everStarted = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: SupervisedPartOptions) {
    this.#options = options;
  }

  start(): void {
    const { entry, env, log, name } = this.#options;
    const child = spawn(process.execPath, ["--enable-source-maps", entry], {
      env,
      stdio: ["inherit", "inherit", "inherit", "ipc"],
      // Its own process group: a terminal's Ctrl-C reaches only the launcher, which then stops
      // the parts in order (a second signal would make a part exit without draining).
      detached: true,
    });
    const run: Run = { child, spawnedAt: performance.now() };
    this.#run = run;
    child.on("message", (message) => {
      if (message !== readyMessage) return;
      run.readyAt = performance.now();
      this.#everStarted = true;
    });
    child.once("exit", (code, signal) => this.#onExit(run, { code, signal }));
    child.on("error", (error) => {
      log.error("could not run a part of the stack", { part: name, error: error.message });
      // A process that never spawned sends no `exit`.
      if (child.pid === undefined) this.#onExit(run, { code: null, signal: null });
    });
  }

  #onExit(run: Run, exit: PartExit): void {
    if (this.#run !== run || this.#closing !== undefined) return;
    this.#run = undefined;
    const { log, name, restart, onGiveUp, backoff = restartBackoff } = this.#options;
    if (!restart || !this.#everStarted) {
      onGiveUp(exit, this.#everStarted);
      return;
    }
    const now = performance.now();
    if (run.readyAt !== undefined && now - run.readyAt >= backoff.stableMs) this.#restarts = 0;
    this.#restarts += 1;
    const restartInMs = restartDelayMs(this.#restarts, backoff);
    log.error(`the ${name} stopped: restarting it`, {
      part: name,
      code: exit.code,
      signal: exit.signal,
      restart: this.#restarts,
      restartInMs,
      ranMs: Math.round(now - run.spawnedAt),
    });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      log.info(`restarting the ${name}`, { part: name, restart: this.#restarts });
      this.start();
    }, restartInMs);
  }

  /**
   * Stops supervising: no more restarts; the running process gets SIGTERM (it drains) and this
   * resolves once it has exited. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#restartTimer);
      const child = this.#run?.child;
      if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
        return;
      }
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    })();
    return this.#closing;
  }
}
