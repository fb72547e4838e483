import { sleep } from "../../shared/process/sleep.js";
import { terminalStatuses } from "./api-schemas.js";

/** One answer of `GET /stream/{id}`: the job's status and what it streamed since the last poll. */
export interface StreamPage {
  readonly status: string;
  readonly stream?: readonly unknown[] | undefined;
}

export interface LongPollOptions {
  /**
   * Least time between the starts of two polls that brought no news (nothing streamed, the same
   * status), in ms: for an API that answers at once (RunPod's hosted one) rather than waiting
   * server-side for news (the local API's `?wait=`). Default 0.
   */
  idlePollMs?: number;
  /** Aborts the wait between two polls, which then rejects with its reason. */
  signal?: AbortSignal | undefined;
}

/**
 * The long-poll loop over a job's `/stream/{id}`: `poll` is called again and again (it makes the
 * request, with its `?wait=`), and each page is yielded, until a page that streamed nothing comes
 * with a terminal status: the job ended and its stream is drained. A caller that has what it
 * wants (the final chunk) stops early by leaving its `for await`.
 */
export async function* longPollStream<Page extends StreamPage>(
  poll: () => Promise<Page>,
  options: LongPollOptions = {},
): AsyncGenerator<Page, void> {
  let previousStatus: string | undefined;
  for (;;) {
    const startedAt = performance.now();
    const page = await poll();
    yield page;
    const news = (page.stream?.length ?? 0) > 0;
    if (!news && terminalStatuses.has(page.status)) return;
    if (!news && page.status === previousStatus) {
      await sleep((options.idlePollMs ?? 0) - (performance.now() - startedAt), {
        signal: options.signal,
        onAbort: "reject",
      });
    }
    previousStatus = page.status;
  }
}
