import { ModelUnavailableError, QueueFullError } from "../../shared/errors/index.js";
import { checkPromptBytes, type GenerationTask, promptBytes } from "../../shared/protocol/index.js";
import type { ModelRegistryReader } from "../registry/model-registry-reader.js";
import type { QueueReservations } from "./queue-reservations.js";
import type { ServiceTimes } from "./service-times.js";

export interface CapacityPolicy {
  registry: ModelRegistryReader;
  reservations: QueueReservations;
  /** Jobs that may wait in a model's queue: its `queue_limit`, else `MAX_QUEUED_JOBS`. */
  queueLimit: (model: string) => number;
  /** Jobs one gpu-worker runs of a model at once: its threads × sequences. */
  slotsPerWorker: (model: string) => number;
  /** Each model's recent run time, for `Retry-After`. */
  serviceTimes: ServiceTimes;
  /** `Retry-After` of `MODEL_UNAVAILABLE`: about when a gpu-worker's heartbeat would show it. */
  unavailableRetryAfterSeconds: number;
}

/**
 * How old the registry's answer "a gpu-worker serves this model" may be when a request is admitted
 * on it. A registry entry itself outlives its gpu-worker by up to `REGISTRY_TTL_MS`; a job admitted
 * just after its last gpu-worker went is handled as any job of a lost gpu-worker.
 */
export const registryMaxAgeMs = 1000;

/** A place on a model's queue, held for one admitted job until it is queued. */
export interface AdmittedCapacity {
  /** Gives the place back; call once the job is on the queue, or failed to get there. */
  release(): void;
  /** Whether no gpu-worker has the model loaded or loading: one must load it for the job. */
  cold: boolean;
}

/**
 * The second half of admission, after the request itself was found valid: the model must be
 * served by a live gpu-worker (loading counts: its jobs wait until it is ready; so does `cold`, a
 * gpu-worker that can load it: the job waits for the load), the prompt must
 * not be larger than any of them could fit (by its bytes, see `protocol/prompt-bytes.ts`), and
 * the model's queue must have room, which is reserved at once (see {@link QueueReservations}):
 * the limit holds exactly, also with several orchestrators on one Redis. Throws
 * `MODEL_UNAVAILABLE` or `QUEUE_FULL`, each with a `Retry-After`, or `PROMPT_TOO_LONG`; nothing is
 * queued or held then. One Redis round trip: the reservation script, beside a registry read at
 * most once per {@link registryMaxAgeMs}.
 */
export async function admitCapacity(
  task: GenerationTask,
  jobId: string,
  policy: CapacityPolicy,
): Promise<AdmittedCapacity> {
  const { model } = task;
  const limit = policy.queueLimit(model);
  const [serving, reservation] = await Promise.allSettled([
    policy.registry.servingRecently(model, registryMaxAgeMs),
    policy.reservations.reserve(model, jobId, limit),
  ]);
  const release = () => policy.reservations.release(model, jobId);
  if (reservation.status === "rejected") throw reservation.reason;
  if (serving.status === "rejected") {
    if (reservation.value.reserved) release();
    throw serving.reason;
  }
  if (serving.value.state === "unavailable") {
    if (reservation.value.reserved) release();
    throw new ModelUnavailableError(
      `no gpu-worker serves the model "${model}" at the moment (none can load it, is loading it or runs it); try again in ${policy.unavailableRetryAfterSeconds} s`,
      { retryAfterSeconds: policy.unavailableRetryAfterSeconds },
    );
  }
  const promptLimit = serving.value.promptLimit;
  if (promptLimit !== undefined) {
    try {
      checkPromptBytes(promptBytes(task.input), promptLimit.bytes, promptLimit.contextSize);
    } catch (error) {
      if (reservation.value.reserved) release();
      throw error;
    }
  }
  if (!reservation.value.reserved) {
    const slots = serving.value.workers * policy.slotsPerWorker(model);
    const seconds = policy.serviceTimes.retryAfterSeconds(model, reservation.value.depth, slots);
    throw new QueueFullError(
      `the queue of model "${model}" holds its limit of ${limit} waiting jobs; try again in ${seconds} s`,
      { retryAfterSeconds: seconds },
    );
  }
  return { release, cold: serving.value.state === "cold" };
}
