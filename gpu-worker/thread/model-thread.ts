/**
 * The entry of a model thread (a piscina worker). Importing it loads the model, once, and warms
 * it up (`warm-up.ts`); piscina waits for that before it hands the thread any job. Each job gets a MessagePort: text goes out on
 * it as it is generated, an `abort` message comes in on it to cancel, and `end` (or `error`) is
 * always the last message, since piscina may resolve the task before the port's last message
 * arrives. The thread is never terminated to cancel a job: that aborts the whole process.
 */

import { parentPort, threadId, workerData } from "node:worker_threads";
import { ModelLoadError, messageOf, toErrorInfo } from "../../shared/errors/index.js";
import {
  type MainToThreadMessage,
  type ModelThreadOptions,
  type ThreadParentMessage,
  type ThreadResult,
  type ThreadTask,
  type ThreadToMainMessage,
  threadStatsIntervalMs,
} from "../../shared/protocol/index.js";
import { generate } from "./generate.js";
import { type LoadedModel, loadModel } from "./load-model.js";
import { TextWindows } from "./text-windows.js";
import { threadStats } from "./thread-stats.js";
import { warmUp } from "./warm-up.js";

const options = workerData as ModelThreadOptions;
const windows = new TextWindows(options.deltaWindowMs);

async function start(): Promise<LoadedModel | Error> {
  try {
    const loaded = await loadModel(options);
    // Before the report: a model is ready once it has evaluated a token, not when its file is in.
    const warmUpMs = await warmUp(loaded);
    report({
      type: "model-loaded",
      modelName: options.modelName,
      contextSize: loaded.context.contextSize,
      ...(loaded.maxTokenBytes === undefined ? {} : { maxTokenBytes: loaded.maxTokenBytes }),
      warmUpMs: Math.round(warmUpMs),
      threadId,
    });
    return loaded;
  } catch (error) {
    const message = messageOf(error);
    report({ type: "model-load-failed", modelName: options.modelName, message, threadId });
    return error instanceof Error ? error : new Error(message);
  }
}

function report(message: ThreadParentMessage): void {
  parentPort?.postMessage(message);
}

const loaded = await start();

if (!(loaded instanceof Error)) {
  const ids = { modelName: options.modelName, threadId };
  // Unref'd: the reports never keep the thread alive.
  setInterval(() => {
    threadStats(loaded, ids, windows.openWindows).then(report, () => {});
  }, threadStatsIntervalMs).unref();
}

async function runJob({ task, port }: ThreadTask): Promise<ThreadResult | undefined> {
  const send = (message: ThreadToMainMessage) => port.postMessage(message);
  const controller = new AbortController();
  port.on("message", (message: MainToThreadMessage) => {
    if (message.type === "abort") controller.abort();
  });
  const text = windows.open((piece) => send({ type: "delta", text: piece }));
  try {
    if (loaded instanceof Error) {
      throw new ModelLoadError(`model "${options.modelName}" failed to load`, { cause: loaded });
    }
    const result = await generate(loaded, task, {
      signal: controller.signal,
      onText: (piece) => text.push(piece),
      onStarted: (sequencesInUse) => send({ type: "started", threadId, sequencesInUse }),
    });
    text.close();
    send({ type: "end", result });
    return result;
  } catch (error) {
    text.close();
    send({ type: "error", error: toErrorInfo(error) });
    return undefined;
  } finally {
    text.close();
    port.close();
  }
}

export default runJob;
