/**
 * Progress of the model downloads of one start: a bar redrawn on a terminal (stderr), or a log line
 * every `intervalMs` when stderr is not a terminal (containers, log collectors).
 */
import type { Logger } from "../../../shared/log.js";

export interface DownloadProgressOptions {
  readonly log: Logger;
  /** Bytes to have on disk when every file is done. */
  readonly totalBytes: number;
  readonly files: number;
  /** A terminal to draw the bar on; `undefined` writes log lines instead. */
  readonly terminal?: { write(text: string): unknown; columns?: number } | undefined;
  /** Between log lines (no terminal). Default 10 s. */
  readonly intervalMs?: number;
}

export class DownloadProgress {
  readonly #options: DownloadProgressOptions;
  readonly #done = new Map<string, number>();
  readonly #startedAt = Date.now();
  readonly #timer: NodeJS.Timeout;
  #startBytes: number | undefined;
  #finishedFiles = 0;

  constructor(options: DownloadProgressOptions) {
    this.#options = options;
    const interval = options.terminal !== undefined ? 250 : (options.intervalMs ?? 10_000);
    this.#timer = setInterval(() => this.#show(), interval);
    this.#timer.unref();
    options.log.info("downloading models from Hugging Face", {
      files: options.files,
      totalBytes: options.totalBytes,
    });
  }

  /** Sets how many bytes of `file` are on disk. */
  update(file: string, doneBytes: number): void {
    this.#startBytes ??= 0;
    if (!this.#done.has(file)) this.#startBytes += doneBytes;
    this.#done.set(file, doneBytes);
  }

  fileDone(file: string, label: string, sizeBytes: number): void {
    this.#done.set(file, sizeBytes);
    this.#finishedFiles++;
    this.#clearLine();
    this.#options.log.info("downloaded", { file: label, sizeBytes });
  }

  close(): void {
    clearInterval(this.#timer);
    this.#clearLine();
  }

  get doneBytes(): number {
    let sum = 0;
    for (const bytes of this.#done.values()) sum += bytes;
    return sum;
  }

  #show(): void {
    const { totalBytes, files, terminal, log } = this.#options;
    const done = this.doneBytes;
    const seconds = (Date.now() - this.#startedAt) / 1000;
    const rate = seconds > 0 ? (done - (this.#startBytes ?? 0)) / seconds : 0;
    const percent = totalBytes > 0 ? Math.min(100, (100 * done) / totalBytes) : 100;
    const eta = rate > 0 ? (totalBytes - done) / rate : undefined;
    if (terminal === undefined) {
      log.info("download progress", {
        percent: Math.floor(percent),
        doneBytes: done,
        totalBytes,
        files: `${this.#finishedFiles}/${files}`,
        mbPerSecond: Number((rate / 1e6).toFixed(1)),
        etaSeconds: eta === undefined ? undefined : Math.ceil(eta),
      });
      return;
    }
    terminal.write(
      `\r${progressBar(percent, done, totalBytes, rate, eta, terminal.columns ?? 80)}`,
    );
  }

  #clearLine(): void {
    this.#options.terminal?.write("\r\u001b[2K");
  }
}

/** One line: `[#####-----]  45%  1.2 GB / 2.7 GB  35.1 MB/s  ETA 40s`, fitted to `columns`. */
export function progressBar(
  percent: number,
  doneBytes: number,
  totalBytes: number,
  bytesPerSecond: number,
  etaSeconds: number | undefined,
  columns: number,
): string {
  const text = `${percent.toFixed(0).padStart(3)}%  ${formatBytes(doneBytes)} / ${formatBytes(totalBytes)}  ${formatBytes(bytesPerSecond)}/s${etaSeconds === undefined ? "" : `  ETA ${formatDuration(etaSeconds)}`}`;
  const width = Math.max(10, Math.min(40, columns - text.length - 4));
  const filled = Math.round((width * percent) / 100);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${text}`;
}

export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
