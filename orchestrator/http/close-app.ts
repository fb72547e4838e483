import type { FastifyInstance } from "fastify";
import { redisCloseGraceMs, settlesWithin } from "../../shared/process/deadline.js";

/**
 * Closes a Fastify app: new requests get 503 while those in flight have up to `timeoutMs` to
 * answer; then their connections are cut. A handler waiting on Redis (its commands wait out a
 * reconnect) would otherwise hold the close, and so the process, for ever.
 */
export async function closeApp(app: FastifyInstance, timeoutMs = redisCloseGraceMs): Promise<void> {
  const closing = app.close();
  if (await settlesWithin(closing, timeoutMs)) return;
  app.server.closeAllConnections();
  await settlesWithin(closing, timeoutMs);
}
