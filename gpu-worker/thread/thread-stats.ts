import { getHeapStatistics } from "node:v8";
import type { ThreadStatsReport } from "../../shared/protocol/index.js";
import type { LoadedModel } from "./load-model.js";

/**
 * The thread's {@link ThreadStatsReport}: its V8 heap, the jobs it holds, and node-llama-cpp's
 * memory. Never anything of a job's text.
 */
export async function threadStats(
  loaded: LoadedModel,
  ids: { modelName: string; threadId: number },
  jobs: number,
): Promise<ThreadStatsReport> {
  const heap = getHeapStatistics();
  const vram = loaded.llama.gpu === false ? undefined : await loaded.llama.getVramState();
  return {
    type: "thread-stats",
    ...ids,
    heapUsedBytes: heap.used_heap_size,
    heapTotalBytes: heap.total_heap_size,
    externalBytes: heap.external_memory,
    jobs,
    sequencesInUse: loaded.slots.inUse,
    tokensHeld: loaded.slots.tokensHeld,
    contextStateBytes: loaded.context.stateSize,
    vramUsedBytes: vram?.used ?? 0,
  };
}
