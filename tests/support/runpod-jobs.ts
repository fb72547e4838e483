import type { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import type { TestStack } from "./stack.js";

/** A platform job: a greedy completion of "the dog", `maxTokens` long, encrypted for `stack`. */
export function greedyPlatformJob(stack: TestStack, id: string, maxTokens: number) {
  return {
    id,
    input: {
      encrypted_input: stack.encrypt({
        prompt: "the dog",
        sampling_params: { max_tokens: maxTokens, temperature: 0 },
      }),
    },
  };
}

/**
 * Gives the worker a long job and waits until it streams, then a short one and waits until the
 * worker holds it (it waits in the model's queue behind the first, with one sequence).
 */
export async function holdRunningAndWaiting(
  platform: FakeRunpodPlatform,
  stack: TestStack,
  running: { id: string; maxTokens: number },
  waiting: { id: string; maxTokens: number },
): Promise<void> {
  platform.enqueue(greedyPlatformJob(stack, running.id, running.maxTokens));
  await stack.explain(
    platform.until(() => platform.streamed(running.id).length > 0, 30_000, "the job to stream"),
  );
  platform.enqueue(greedyPlatformJob(stack, waiting.id, waiting.maxTokens));
  await stack.explain(
    platform.until(
      () => platform.takes.some((take) => take.jobIds.includes(waiting.id)),
      30_000,
      "the second job to be held",
    ),
  );
}
