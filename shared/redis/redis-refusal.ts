/**
 * Replies with which Redis turns down a connection for good: a wrong password, a database it does
 * not have. Waiting will not change them, so a starting process stops at once (a configuration
 * error) instead of retrying; any other failure (nothing listens yet, a timeout, a server still
 * loading its data) may pass, and is waited out for `REDIS_CONNECT_TIMEOUT_MS`.
 */

/** Replies that say "not now" rather than "not this way": a start waits them out. */
const passingReplies = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b|max number of clients/i;

/** What the connection asked of Redis, for the words of a refusal. */
export interface RefusedSetup {
  /** The database number REDIS_URL asks for. */
  db: number;
  /** REDIS_URL's password ("" for none): hidden, should Redis ever echo it. */
  password: string;
  /** Where the credentials come from, for the words of a refusal (default `REDIS_URL`). */
  credentials?: string;
}

/**
 * Why Redis refused this connection's configuration, in words for an operator that read after
 * "Redis refused the connection: ", or `undefined` when `error` is no such refusal (not a reply of
 * Redis, or one that may pass).
 */
export function describeRefusal(error: Error, setup: RefusedSetup): string | undefined {
  const { db, password } = setup;
  const credentials = setup.credentials ?? "REDIS_URL";
  if (error.name !== "ReplyError") return undefined;
  const reply = error.message;
  if (passingReplies.test(reply)) return undefined;
  if (/^NOAUTH\b/.test(reply)) {
    return credentials === "REDIS_URL"
      ? "it requires a password and REDIS_URL gives none: redis://:PASSWORD@host:port " +
          "(redis://USER:PASSWORD@host:port for an ACL user)"
      : `it requires a password and ${credentials} gives none`;
  }
  if (/^WRONGPASS\b|invalid password|invalid username-password/i.test(reply)) {
    return `the user name or password in ${credentials} is wrong`;
  }
  if (/DB index is out of range|invalid DB index/i.test(reply)) {
    return (
      `it has no database ${db} (a Redis has 16, numbered 0 to 15, unless its \`databases\` ` +
      "setting says otherwise): put a database it has after the port in REDIS_URL, or none for 0"
    );
  }
  if (/SELECT is not allowed in cluster mode/i.test(reply)) {
    return `it runs in cluster mode, which has only database 0: remove /${db} from REDIS_URL`;
  }
  if (/^DENIED\b/.test(reply)) {
    return (
      "it runs in protected mode and takes no connections from other hosts: give it a password " +
      "(requirepass) and put it in REDIS_URL"
    );
  }
  if (/^NOPERM\b/.test(reply)) {
    return "the Redis user in REDIS_URL lacks a permission (its ACL must allow the pool's commands)";
  }
  const shown = password === "" ? reply : reply.replaceAll(password, "***");
  return `it answered "${shown.slice(0, 200)}"`;
}
