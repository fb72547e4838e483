/**
 * The entry of a model thread (a piscina worker). Importing it starts the backend (node-llama-cpp
 * and llama.cpp's, `workerData`), with no model: a thread can wait started, as a spare, for the
 * model it is given (`gpu-worker/pool/thread-spares.ts`). Its first task loads the model, once,
 * and warms it up (`warm-up.ts`). Each job gets a MessagePort: text goes out on it as it is
 * generated, an `abort` message comes in on it to cancel, and `end` (or `error`) is always the
 * last message, since piscina may resolve the task before the port's last message arrives. The
 * thread is never terminated to cancel a job: that aborts the whole process; before it is stopped
 * its last task lets go of the model and the backend.
 */

import { parentPort, threadId, workerData } from "node:worker_threads";
import type { Llama } from "node-llama-cpp";
import { ModelLoadError, messageOf, toErrorInfo } from "../../shared/errors/index.js";
import {
  type JobTask,
  type MainToThreadMessage,
  type ModelLoadOptions,
  type ThreadBackendOptions,
  type ThreadLoadReport,
  type ThreadParentMessage,
  type ThreadResult,
  type ThreadTask,
  type ThreadToMainMessage,
  threadStatsIntervalMs,
} from "../../shared/protocol/index.js";
import type { EstimateReport, EstimateTask } from "../memory/estimate-messages.js";
import { estimateModels } from "../memory/estimate-models.js";
import { ChoiceWindows } from "./choice-windows.js";
import { embed } from "./embed.js";
import { generate } from "./generate.js";
import { type LoadedModel, loadModel, startBackend } from "./load-model.js";
import { TextWindows } from "./text-windows.js";
import { threadStats } from "./thread-stats.js";
import { warmUp } from "./warm-up.js";

const backend = workerData as ThreadBackendOptions;
const windows = new TextWindows(backend.deltaWindowMs);
let modelName = "no model";
/** The backend, started as the thread starts (or why it could not be). */
const llama: Llama | Error = await startBackend(backend, () => modelName).catch((error: unknown) =>
  error instanceof Error ? error : new Error(messageOf(error)),
);
/** The model this thread holds, once its load began. */
let loading: Promise<LoadedModel | Error> | undefined;
/** What its load reported. */
let loadReport: ThreadLoadReport | undefined;
let statsTimer: NodeJS.Timeout | undefined;

function report(message: ThreadParentMessage): void {
  parentPort?.postMessage(message);
}

/** Loads the thread's model (once: a second call waits for the first), warms it up, reports. */
function load(options: ModelLoadOptions): Promise<LoadedModel | Error> {
  loading ??= (async () => {
    modelName = options.modelName;
    try {
      if (llama instanceof Error) throw llama;
      const loaded = await loadModel(llama, options);
      // Before the report: a model is ready once it has evaluated a token, not when its file is in.
      const warmUpMs = await warmUp(loaded);
      loadReport = {
        type: "model-loaded",
        modelName: options.modelName,
        contextSize: loaded.context.contextSize,
        ...(loaded.maxTokenBytes === undefined ? {} : { maxTokenBytes: loaded.maxTokenBytes }),
        warmUpMs: Math.round(warmUpMs),
        threadId,
      };
      report(loadReport);
      const ids = { modelName: options.modelName, threadId };
      // Unref'd: the reports never keep the thread alive.
      statsTimer = setInterval(() => {
        threadStats(loaded, ids, windows.openWindows).then(report, () => {});
      }, threadStatsIntervalMs);
      statsTimer.unref();
      return loaded;
    } catch (error) {
      const message = messageOf(error);
      loadReport = { type: "model-load-failed", modelName: options.modelName, message, threadId };
      report(loadReport);
      return error instanceof Error ? error : new Error(message);
    }
  })();
  return loading;
}

async function runJob({
  task,
  port,
  model,
  continuation,
}: JobTask): Promise<ThreadResult | undefined> {
  const send = (message: ThreadToMainMessage) => port.postMessage(message);
  const controller = new AbortController();
  port.on("message", (message: MainToThreadMessage) => {
    if (message.type === "abort") controller.abort();
  });
  const text = windows.open((piece, extras) =>
    send({
      type: "delta",
      text: piece,
      ...(extras?.tokens === undefined ? {} : { tokens: extras.tokens }),
      ...(extras?.toolCalls === undefined ? {} : { toolCalls: extras.toolCalls }),
    }),
  );
  // Choices past the first, and logprobs, get windows of their own (see `choice-windows.ts`).
  const choices = new ChoiceWindows(windows, text, send);
  try {
    const loaded = await load(model);
    if (loaded instanceof Error) {
      throw new ModelLoadError(`model "${model.modelName}" failed to load`, { cause: loaded });
    }
    const result =
      task.input.kind === "embed"
        ? await embed(loaded, model.modelName, task.input, {
            signal: controller.signal,
            onStarted: () =>
              send({ type: "started", threadId, sequencesInUse: loaded.slots.inUse }),
          })
        : await generate(
            loaded,
            task,
            {
              signal: controller.signal,
              onText: (piece, tokens) => text.push(piece, undefined, tokens),
              onChoiceText: (index, piece, logprobs) => choices.push(index, piece, logprobs),
              onToolCall: (piece) => text.pushToolCall(piece),
              onStarted: (sequencesInUse) => send({ type: "started", threadId, sequencesInUse }),
            },
            continuation,
          );
    choices.close();
    text.close();
    send({ type: "end", result });
    return result;
  } catch (error) {
    choices.close();
    text.close();
    send({ type: "error", error: toErrorInfo(error) });
    return undefined;
  } finally {
    choices.close();
    text.close();
    port.close();
  }
}

/**
 * Lets go of the model: the thread then holds none and takes the next load. With the backend too,
 * it holds no native memory when it is stopped.
 */
async function unload(keepBackend: boolean): Promise<void> {
  clearInterval(statsTimer);
  const loaded = await loading;
  if (loaded !== undefined && !(loaded instanceof Error)) {
    await loaded.embedding?.dispose();
    await loaded.context.dispose();
    await loaded.model.dispose();
  }
  loading = undefined;
  loadReport = undefined;
  modelName = "no model";
  if (!keepBackend && !(llama instanceof Error)) await llama.dispose();
}

/**
 * Runs a task: a job, the load of the thread's model, the unload before it stops, or (on a spare)
 * the memory plan's estimate.
 */
export default async function runTask(
  task: ThreadTask | EstimateTask,
): Promise<ThreadResult | ThreadLoadReport | EstimateReport | undefined> {
  if (task.kind === "job") return runJob(task);
  if (task.kind === "estimate") {
    if (llama instanceof Error) throw llama;
    return estimateModels(llama, task.request);
  }
  if (task.kind === "unload") {
    await unload(task.keepBackend === true);
    return undefined;
  }
  await load(task.model);
  return loadReport;
}
