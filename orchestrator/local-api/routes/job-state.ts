import type { FastifyInstance } from "fastify";
import { clientTokenHeader } from "../../../shared/crypto/index.js";
import { redisAnswerMs, redisAnswerWithin } from "../../../shared/process/deadline.js";
import type { Orchestrator } from "../../orchestrator.js";
import { mayReadJob } from "../job-owner.js";
import { statusView, streamView } from "../job-views.js";
import { parseWait } from "../query.js";

const notFound = {
  error: "no such job (unknown id, or finished longer ago than RESULT_RETENTION_MS)",
};

/** `/status/{id}`, `/status-sync/{id}`, `/stream/{id}` and `/cancel/{id}`. */
export function registerJobStateRoutes(app: FastifyInstance, orchestrator: Orchestrator): void {
  // From memory, else from the job's record in Redis (a Redis that does not answer: 503). A named
  // client's job is found only with that client's `X-Client-Token`: to anyone else it does not exist.
  const find = async (id: string, headers: Record<string, string | string[] | undefined>) => {
    const record = await redisAnswerWithin(orchestrator.jobs.find(id), redisAnswerMs);
    if (record === undefined) return undefined;
    return mayReadJob(record, headers[clientTokenHeader], orchestrator.clients)
      ? record
      : undefined;
  };

  app.get<{ Params: { id: string } }>("/status/:id", async (request, reply) => {
    const record = await find(request.params.id, request.headers);
    if (record === undefined) return reply.code(404).send(notFound);
    return statusView(record);
  });

  // RunPod's `/status-sync/{id}?wait=ms` (runpod-sdk's `statusSync`, and `runSync` once its
  // `/runsync` wait ran out): `/status` once the job is terminal or the wait (default 90 s) is over.
  app.get<{ Params: { id: string }; Querystring: { wait?: string } }>(
    "/status-sync/:id",
    async (request, reply) => {
      const waitMs = parseWait(request.query.wait, 90_000, 300_000);
      if (typeof waitMs === "string") return reply.code(400).send({ error: waitMs });
      const record = await find(request.params.id, request.headers);
      if (record === undefined) return reply.code(404).send(notFound);
      await record.waitForEnd(waitMs);
      return statusView(record);
    },
  );

  // Returns the chunks produced since the previous poll. When there are none yet it waits (up to
  // `?wait=`, default 5 s) for the next chunk or the end, so polling loops do not spin; the job
  // starting to run is no reason to answer an empty page.
  app.get<{ Params: { id: string }; Querystring: { wait?: string } }>(
    "/stream/:id",
    async (request, reply) => {
      const waitMs = parseWait(request.query.wait, 5_000, 60_000);
      if (typeof waitMs === "string") return reply.code(400).send({ error: waitMs });
      const record = await find(request.params.id, request.headers);
      if (record === undefined) return reply.code(404).send(notFound);
      // A job another live orchestrator tracks is read from its record: no change comes here to
      // wait for, so the poll is answered after a short pause instead.
      const tracked = orchestrator.jobs.known(record.id) !== undefined;
      const pauseMs = tracked ? waitMs : Math.min(waitMs, 1000);
      await record.waitForChunks(pauseMs);
      return streamView(record);
    },
  );

  app.post<{ Params: { id: string } }>("/cancel/:id", async (request, reply) => {
    if ((await find(request.params.id, request.headers)) === undefined) {
      return reply.code(404).send(notFound);
    }
    const record = await orchestrator.jobs.cancel(request.params.id);
    if (record === undefined) return reply.code(404).send(notFound);
    return { id: record.id, status: record.status };
  });
}
