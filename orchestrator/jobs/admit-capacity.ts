import { QueueFullError, UnknownModelError } from "../../shared/errors/index.js";
import type { ModelRegistryReader } from "../registry/model-registry-reader.js";
import type { ModelQueues } from "./model-queues.js";

export interface CapacityPolicy {
  registry: ModelRegistryReader;
  queues: ModelQueues;
  /** Jobs that may wait in a model's queue: its `queue_limit`, else `MAX_QUEUED_JOBS`. */
  queueLimit: (model: string) => number;
}

/**
 * The second half of admission, after the request itself was found valid: the model must be
 * served by a live gpu-worker (loading counts: its jobs wait until it is ready), and its queue
 * must have room. Throws `UNKNOWN_MODEL` or `QUEUE_FULL`; nothing is queued then. One Redis round
 * trip (two commands sent together). The limit is checked, not reserved: requests admitted at the same instant may overshoot
 * it by their number.
 */
export async function admitCapacity(model: string, policy: CapacityPolicy): Promise<void> {
  // Both questions at once: one round trip on the wire instead of two.
  const [serving, waiting] = await Promise.all([
    policy.registry.serving(model),
    policy.queues.waitingCount(model),
  ]);
  if (serving.state === "unavailable") {
    throw new UnknownModelError(
      `no gpu-worker serves the model "${model}" at the moment (none is loading or running it)`,
    );
  }
  const limit = policy.queueLimit(model);
  if (waiting >= limit) {
    throw new QueueFullError(
      `the queue of model "${model}" holds its limit of ${limit} waiting jobs; try again later`,
    );
  }
}
