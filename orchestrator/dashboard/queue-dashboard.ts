import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import { Queue } from "bullmq";
import Fastify, { type FastifyInstance } from "fastify";
import type { Redis } from "ioredis";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { redisCloseGraceMs, settlesWithin } from "../../shared/process/deadline.js";
import { closeApp } from "../http/close-app.js";
import { createDashboardAuthCheck } from "./dashboard-auth.js";

export interface QueueDashboardOptions {
  /** The models whose queues are shown. */
  models: readonly string[];
  connection: Redis;
  names: RedisNames;
  /** When set, every route needs the key (HTTP Basic password, or `Bearer <apiKey>`). */
  apiKey: string | undefined;
  log: Logger;
}

export interface QueueDashboard {
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

/**
 * The admin queue dashboard: bull-board over the model queues, read-only (no retry, clean, or
 * delete), so it can watch a deployment without being able to change it. Job data and return values
 * are Fernet tokens sealed with the service key, so it never shows a prompt or a reply.
 */
export function createQueueDashboard(options: QueueDashboardOptions): QueueDashboard {
  const { names, log } = options;
  const queues = options.models.map(
    (model) =>
      new Queue(names.modelQueue(model), {
        connection: options.connection,
        prefix: names.bullPrefix,
      }),
  );
  for (const queue of queues) {
    queue.on("error", (error: Error) =>
      log.error("dashboard queue error", { queue: queue.name, error: error.message }),
    );
  }

  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath("/");
  createBullBoard({
    queues: queues.map(
      (queue) =>
        new BullMQAdapter(queue, {
          readOnlyMode: true,
          allowRetries: false,
          description: `jobs for model "${queue.name.replace(/^model-/, "")}"`,
        }),
    ),
    serverAdapter,
    options: { uiConfig: { boardTitle: "LLM pool queues" } },
  });

  const app = Fastify({ logger: false, return503OnClosing: true });
  if (options.apiKey !== undefined) {
    const check = createDashboardAuthCheck(options.apiKey);
    app.addHook("onRequest", async (request, reply) => {
      if (request.url === "/health") return;
      if (!check(request.headers.authorization)) {
        return reply
          .code(401)
          .header("WWW-Authenticate", 'Basic realm="queue dashboard", charset="UTF-8"')
          .send({ error: "missing or wrong API key (any user name, API_KEY as password)" });
      }
    });
  }
  app.get("/health", async () => ({ ok: true }));
  void app.register(serverAdapter.registerPlugin(), { prefix: "/" });

  let closing: Promise<void> | undefined;
  return {
    app,
    close() {
      closing ??= (async () => {
        await closeApp(app);
        // BullMQ's close waits on Redis with no bound of its own.
        const closed = Promise.allSettled(queues.map((queue) => queue.close()));
        if (!(await settlesWithin(closed, redisCloseGraceMs))) {
          log.warn("the dashboard's queues did not close: Redis did not answer; gave up on them");
        }
      })();
      return closing;
    },
  };
}
