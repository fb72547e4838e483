import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { Orchestrator } from "../../orchestrator.js";
import { statusView } from "../job-views.js";
import { setOverloadStatus } from "../overload-status.js";
import { parseWait } from "../query.js";

/**
 * The body of `/run` and `/runsync`, as RunPod's hosted API takes it. Only `input` matters to
 * the job; `policy.executionTimeout` bounds it. Webhooks are not offered by the local API.
 */
const runBodySchema = z.looseObject({
  input: z.unknown().refine((value) => value !== undefined, { error: "is required" }),
  webhook: z
    .undefined({ error: "is not supported by the local API; poll /status or /stream" })
    .optional(),
  policy: z
    .looseObject({
      executionTimeout: z
        .number({ error: "must be a number of milliseconds" })
        .int()
        .min(1000, { error: "must be at least 1000 ms" })
        .max(86_400_000, { error: "must be at most 86400000 ms (24 h)" })
        .optional(),
    })
    .optional(),
});

export function registerRunRoutes(app: FastifyInstance, orchestrator: Orchestrator): void {
  // MAX_REQUEST_BYTES: a larger body is refused with 413 before it is read in full.
  const bodyLimit = orchestrator.maxRequestBytes;
  const submit = async (body: unknown) => {
    const parsed = runBodySchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? issue.path.join(".") : "input";
      return { error: `body.${where}: ${issue?.message ?? "invalid"}` };
    }
    const timeoutMs = parsed.data.policy?.executionTimeout;
    return {
      record: await orchestrator.jobs.submit(
        parsed.data.input,
        timeoutMs === undefined ? {} : { timeoutMs },
      ),
    };
  };

  app.post("/run", { bodyLimit }, async (request, reply) => {
    const submitted = await submit(request.body);
    if (submitted.record === undefined) return reply.code(400).send({ error: submitted.error });
    const { record } = submitted;
    setOverloadStatus(reply, record);
    return {
      id: record.id,
      status: record.status,
      ...(record.error === undefined ? {} : { error: JSON.stringify(record.error) }),
    };
  });

  app.post<{ Querystring: { wait?: string } }>(
    "/runsync",
    { bodyLimit },
    async (request, reply) => {
      const waitMs = parseWait(request.query.wait, 90_000, 300_000);
      if (typeof waitMs === "string") return reply.code(400).send({ error: waitMs });
      const submitted = await submit(request.body);
      if (submitted.record === undefined) return reply.code(400).send({ error: submitted.error });
      await submitted.record.waitForEnd(waitMs);
      setOverloadStatus(reply, submitted.record);
      return statusView(submitted.record);
    },
  );
}
