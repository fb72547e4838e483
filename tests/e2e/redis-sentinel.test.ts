import { after, before, describe, it } from "node:test";
import { tinyModelPath } from "../support/models.js";
import { TestSentinels } from "../support/redis-sentinel.js";
import { TestStack } from "../support/stack.js";
import {
  answersOldJobsAfterRestart,
  cancelsMidStream,
  greedy,
  holdsTheQueueLimit,
  refusesWrongPassword,
  servesLikeTheRawModel,
  survivesPrimaryLoss,
} from "../support/topology-scenarios.js";
import { waitFor } from "../support/wait-for.js";

const queueLimit = 3;
const sequences = 2;

describe("the pool on a Sentinel-managed Redis", { timeout: 600_000 }, () => {
  let sentinels: TestSentinels;
  let stack: TestStack;
  let modelPath: string;

  before(async () => {
    modelPath = await tinyModelPath();
    sentinels = await TestSentinels.start();
    stack = await TestStack.start({
      models: `tiny=${modelPath}?sequences=${sequences}&queue_limit=${queueLimit}`,
      // No finished job kept for the dashboard: every per-job key must then carry an expiry.
      env: { CONTEXT_SIZE: "2048", DELTA_WINDOW_MS: "5", DASHBOARD_RETENTION: "off" },
      redisEnv: sentinels.env,
      label: "sentinel",
    });
  });

  after(async () => {
    await stack?.stop();
    await sentinels?.close();
  });

  it("refuses a wrong REDIS_PASSWORD at start, exit 2, naming the setting", async () => {
    await refusesWrongPassword(
      sentinels.env,
      modelPath,
      /REDIS_SENTINELS=127\.0\.0\.1:\d+,.* REDIS_SENTINEL_NAME=pool-primary: Redis refused the connection: the user name or password in REDIS_USERNAME\/REDIS_PASSWORD is wrong/,
    );
  });

  it("streams an encrypted request's text equal to raw node-llama-cpp's", async () => {
    await servesLikeTheRawModel(stack, modelPath);
  });

  it("cancels a running job", async () => {
    await cancelsMidStream(stack);
  });

  it("holds the queue limit exactly under concurrent admissions", async () => {
    await holdsTheQueueLimit(stack, { limit: queueLimit, sequences, requests: 10 });
  });

  it("answers a finished job's id after an orchestrator restart", async () => {
    await answersOldJobsAfterRestart(stack);
  });

  it("survives the loss of the primary", async () => {
    await waitFor(
      async () => (await stack.runsync(greedy("ready", 2))).status === "COMPLETED",
      30_000,
      "the stack to serve",
      200,
    );
    const victim = await sentinels.primary();
    const result = await survivesPrimaryLoss(stack, {
      target: sentinels.target,
      kill: () => victim.kill("SIGKILL"),
      promoted: () =>
        waitFor(
          async () => (await sentinels.primaryPort()) !== victim.port,
          30_000,
          "the Sentinels to promote the replica",
          50,
        ),
    });
    console.log(`sentinel failover: ${JSON.stringify(result)}`);
  });
});
