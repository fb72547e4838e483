import { messageOf } from "../../shared/errors/index.js";
import type { JobInput } from "../../shared/protocol/index.js";
import { ExitCode, JobFailedError } from "../pool-client/client-errors.js";
import type { PoolClient } from "../pool-client/pool-client.js";
import type { StreamPrinter } from "./print.js";

export interface RunJobOptions {
  /** `/run` + `/stream` polling when `true`, `/runsync` when `false`. */
  stream: boolean;
  printer: StreamPrinter;
  /** Aborted on Ctrl-C: the job is then cancelled and the result is {@link ExitCode.interrupted}. */
  signal: AbortSignal;
  /** Warnings that are not the job's output (a failed cancel). */
  warn: (message: string) => void;
}

/** How long a cancel may take on the way out after Ctrl-C. */
const cancelTimeoutMs = 5_000;

/**
 * Runs one encrypted job to its end, printing as it goes, and returns the exit status: completed,
 * job failed, or interrupted (after cancelling the job). Connection errors are thrown.
 */
export async function runJob(
  client: PoolClient,
  input: JobInput,
  options: RunJobOptions,
): Promise<ExitCode> {
  const { printer, signal } = options;
  let jobId: string | undefined;
  try {
    if (options.stream) {
      // Not abortable: once /run is sent the job exists, and only its id lets Ctrl-C cancel it.
      const job = await client.submit(input);
      jobId = job.id;
      if (signal.aborted) throw signal.reason;
      for await (const chunk of client.chunks(job.id, { signal })) printer.chunk(chunk);
    } else {
      const finished = await client.runSync(input, {
        signal,
        onJobId: (id) => {
          jobId = id;
        },
      });
      jobId = finished.id;
      for (const chunk of finished.chunks) printer.chunk(chunk);
    }
    printer.completed(jobId);
    return ExitCode.completed;
  } catch (error) {
    if (signal.aborted) {
      const status = jobId === undefined ? undefined : await cancel(client, jobId, options.warn);
      printer.interrupted(jobId, status);
      return ExitCode.interrupted;
    }
    if (error instanceof JobFailedError) {
      printer.failed(error);
      return ExitCode.jobFailed;
    }
    throw error;
  }
}

async function cancel(
  client: PoolClient,
  jobId: string,
  warn: (message: string) => void,
): Promise<string | undefined> {
  try {
    return await client.cancel(jobId, { signal: AbortSignal.timeout(cancelTimeoutMs) });
  } catch (error) {
    const reason = messageOf(error);
    warn(`could not cancel job ${jobId}: ${reason}`);
    return undefined;
  }
}
