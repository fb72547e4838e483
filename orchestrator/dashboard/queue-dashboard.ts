import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { redisAnswerMs, redisAnswerWithin } from "../../shared/process/deadline.js";
import type { RedisClient } from "../../shared/redis/index.js";
import { closeApp } from "../http/close-app.js";
import { ModelRegistryReader } from "../registry/model-registry-reader.js";
import { readClientOverview } from "./client-overview.js";
import { createDashboardAuthCheck } from "./dashboard-auth.js";
import { DashboardQueues } from "./dashboard-queues.js";
import { ModelDiscovery } from "./model-discovery.js";
import { readOverview, renderOverview } from "./model-overview.js";
import { overviewScript } from "./overview-script.js";

/**
 * Everything the page loads comes from this server: bull-board's scripts, styles and icons, and
 * our overview (no script of ours). Inline styles are bull-board's (its loading screen, React's
 * style attributes); its inline `<script type="application/json">` is data, not run.
 */
export const dashboardCsp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** bull-board's page asks Google for its fonts; the page falls back on system fonts without. */
const externalFontLink = /<link[^>]+href="https?:\/\/fonts\.(googleapis|gstatic)\.com[^>]*>\s*/g;

/** Redis is asked for the models it knows at most this often (on the page's requests), in ms. */
const modelRefreshMs = 2000;

/** The requests that list the models (the page, bull-board's queue list, the overview). */
const listingRoute = /^\/(?:$|\?|queue\/|api\/queues(?:$|\?)|overview\.json)/;

export interface QueueDashboardOptions {
  /**
   * Models shown even when Redis knows nothing of them (`MODELS`, when set); the others are found
   * in Redis (see `ModelDiscovery`).
   */
  models: readonly string[];
  connection: RedisClient;
  names: RedisNames;
  /** When set, every route needs the key (HTTP Basic password, or `Bearer <apiKey>`). */
  apiKey: string | undefined;
  log: Logger;
}

export interface QueueDashboard {
  readonly app: FastifyInstance;
  /** Looks for models in Redis (unless that was done within `modelRefreshMs`): those shown. */
  findModels(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * The admin queue dashboard: bull-board over the model queues, read-only (no retry, clean, or
 * delete), so it can watch a deployment without being able to change it. A waiting job's data is
 * its sealed task (a Fernet token); once a gpu-worker takes it, its metadata only (model, status,
 * error code, timings, token counts); so it never shows a prompt or a reply. Finished jobs stay
 * for `DASHBOARD_RETENTION`. Above bull-board, an overview of each model: its state, live
 * gpu-workers, queue depth, kept outcomes (cancelled jobs apart) and recent tokens per second.
 * The models are those Redis knows under the prefix, looked for again as requests come (so one
 * that appears later is shown without a restart), and those named in `models`.
 */
export function createQueueDashboard(options: QueueDashboardOptions): QueueDashboard {
  const { names, log, connection } = options;
  const queues = new DashboardQueues({
    connection,
    names,
    discovery: new ModelDiscovery({ redis: connection, names, known: options.models }),
    refreshMs: modelRefreshMs,
    log,
  });
  queues.show(options.models);
  const registry = new ModelRegistryReader({ redis: connection, names, log });
  const overview = () =>
    redisAnswerWithin(readOverview(queues.byModel, registry, connection), redisAnswerMs);

  const app = Fastify({ logger: false, return503OnClosing: true });
  app.addHook("onRequest", async (_request, reply) => {
    reply.header("content-security-policy", dashboardCsp);
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
  });
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
  // Models that appeared since are looked for before a request that lists them (bounded in time).
  app.addHook("onRequest", async (request) => {
    if (request.method === "GET" && listingRoute.test(request.url)) await queues.refresh();
  });
  app.get("/health", async () => ({ ok: true }));
  app.get("/overview.json", overview);
  app.get("/overview.js", async (_request, reply) =>
    reply.header("content-type", "text/javascript; charset=utf-8").send(overviewScript),
  );
  // bull-board's page, rewritten: no fonts from other hosts, and the overview above its queues.
  app.addHook("onSend", async (_request, reply, payload) => {
    const type = reply.getHeader("content-type");
    if (typeof payload !== "string" || typeof type !== "string" || !type.startsWith("text/html")) {
      return payload;
    }
    const lines = await overview().catch((error: Error) => {
      log.warn("dashboard overview unavailable", { error: error.message });
      return undefined;
    });
    const gpuWorkers = await redisAnswerWithin(registry.gpuWorkers(), redisAnswerMs).catch(
      () => undefined,
    );
    const clients = await redisAnswerWithin(
      readClientOverview(queues.byModel),
      redisAnswerMs,
    ).catch(() => undefined);
    return payload
      .replace(externalFontLink, "")
      .replace(/<body([^>]*)>/, (body) => `${body}${renderOverview(lines, gpuWorkers, clients)}`);
  });
  void app.register(queues.serverAdapter.registerPlugin(), { prefix: "/" });

  let closing: Promise<void> | undefined;
  return {
    app,
    async findModels() {
      await queues.refresh();
      return [...queues.byModel.keys()];
    },
    close() {
      closing ??= (async () => {
        await closeApp(app);
        await queues.close();
      })();
      return closing;
    },
  };
}
