/**
 * REDIS_SENTINELS / REDIS_SENTINEL_NAME / REDIS_CLUSTER_NODES (with REDIS_USERNAME,
 * REDIS_PASSWORD, REDIS_TLS, REDIS_SENTINEL_PASSWORD) read into the target every connection is
 * made from; the errors name the variable and never echo a password.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readRedisTopology } from "../../shared/config/redis-topology.js";
import { ConfigError } from "../../shared/errors/index.js";
import { RedisNames } from "../../shared/naming.js";
import { describeRedisTarget, parseHostPorts } from "../../shared/redis/index.js";

describe("Redis topology settings", () => {
  it("none set: one server (REDIS_URL or the local default)", () => {
    assert.equal(readRedisTopology({}), undefined);
    assert.equal(readRedisTopology({ REDIS_URL: "redis://h:1" }), undefined);
  });

  it("reads Sentinels, the primary's name (default mymaster) and the credentials", () => {
    assert.deepEqual(readRedisTopology({ REDIS_SENTINELS: "10.0.0.1:26379, s2:26380" }), {
      kind: "sentinel",
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "s2", port: 26380 },
      ],
      name: "mymaster",
      sentinelPassword: undefined,
      username: undefined,
      password: undefined,
      tls: false,
    });
    const target = readRedisTopology({
      REDIS_SENTINELS: "[::1]:26379",
      REDIS_SENTINEL_NAME: "pool",
      REDIS_SENTINEL_PASSWORD: "s3cret",
      REDIS_USERNAME: "pool",
      REDIS_PASSWORD: "pw",
      REDIS_TLS: "true",
    });
    assert.deepEqual(target, {
      kind: "sentinel",
      sentinels: [{ host: "::1", port: 26379 }],
      name: "pool",
      sentinelPassword: "s3cret",
      username: "pool",
      password: "pw",
      tls: true,
    });
    assert.ok(target !== undefined);
    assert.equal(
      describeRedisTarget(target),
      "REDIS_SENTINELS=[::1]:26379 REDIS_SENTINEL_NAME=pool",
    );
  });

  it("reads cluster seeds", () => {
    const target = readRedisTopology({ REDIS_CLUSTER_NODES: "a:7000,b:7001", REDIS_PASSWORD: "x" });
    assert.deepEqual(target, {
      kind: "cluster",
      nodes: [
        { host: "a", port: 7000 },
        { host: "b", port: 7001 },
      ],
      username: undefined,
      password: "x",
      tls: false,
    });
    assert.ok(target !== undefined);
    assert.equal(describeRedisTarget(target), "REDIS_CLUSTER_NODES=a:7000,b:7001");
  });

  it("refuses two topologies at once, and settings without their topology", () => {
    const refused = (env: Record<string, string>, message: RegExp) =>
      assert.throws(
        () => readRedisTopology(env),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, message);
          assert.doesNotMatch(error.message, /s3cret/);
          return true;
        },
      );
    refused(
      { REDIS_URL: "redis://h:1", REDIS_CLUSTER_NODES: "a:1" },
      /REDIS_URL and REDIS_CLUSTER_NODES exclude each other/,
    );
    refused(
      { REDIS_SENTINELS: "a:1", REDIS_CLUSTER_NODES: "a:1" },
      /REDIS_SENTINELS and REDIS_CLUSTER_NODES exclude each other/,
    );
    refused(
      { REDIS_PASSWORD: "s3cret" },
      /REDIS_PASSWORD applies to REDIS_SENTINELS or REDIS_CLUSTER_NODES only/,
    );
    refused(
      { REDIS_SENTINEL_NAME: "x" },
      /REDIS_SENTINEL_NAME and REDIS_SENTINEL_PASSWORD need REDIS_SENTINELS/,
    );
    refused(
      { REDIS_CLUSTER_NODES: "a:70000" },
      /REDIS_CLUSTER_NODES must be a comma-separated list of host:port/,
    );
    refused(
      { REDIS_SENTINELS: "a" },
      /REDIS_SENTINELS must be a comma-separated list of host:port/,
    );
    refused({ REDIS_CLUSTER_NODES: "a:1", REDIS_TLS: "maybe" }, /REDIS_TLS must be 1, true/);
  });

  it("parses host:port lists, IPv6 in brackets", () => {
    assert.deepEqual(parseHostPorts("h:1,[fe80::1]:2"), [
      { host: "h", port: 1 },
      { host: "fe80::1", port: 2 },
    ]);
    for (const bad of ["", "h", ":1", "h:0", "h:1,", "fe80::1:2", "h:1 x"]) {
      assert.equal(parseHostPorts(bad), undefined, bad);
    }
  });
});

describe("hash tags of the key names", () => {
  const names = new RedisNames("pool");
  const tag = (key: string) => /\{([^}]*)\}/.exec(key)?.[1];

  it("a model's queue and its reservations share the model's tag", () => {
    assert.equal(tag(`${names.bullPrefix}:${names.modelQueue("tiny")}:wait`), "model-tiny");
    assert.equal(tag(names.queueReservations("tiny")), "model-tiny");
    assert.equal(tag(names.queueJob("tiny", "j1")), "model-tiny");
    assert.notEqual(tag(names.queueReservations("other")), "model-tiny");
  });

  it("a job's keys share its id's tag", () => {
    for (const key of [
      names.jobRecord("j1"),
      names.deltaStream("j1"),
      names.ownerKey("j1"),
      names.cancelKey("j1"),
    ]) {
      assert.equal(tag(key), "j1", key);
      assert.ok(key.startsWith("pool:"), key);
    }
  });

  it("the pool-wide state shares one tag, and model discovery reads its keys back", () => {
    for (const key of [
      names.modelRegistry("tiny"),
      names.gpuWorkers,
      names.loadClaim("tiny"),
      names.orchestratorAlive("o1"),
      names.orchestratorJobs("o1"),
    ]) {
      assert.equal(tag(key), "pool", key);
    }
    assert.equal(names.modelOfKey(names.modelRegistry("tiny")), "tiny");
    assert.equal(names.modelOfKey(`${names.bullPrefix}:${names.modelQueue("m.1")}:meta`), "m.1");
    assert.equal(names.modelOfKey(`${names.bullPrefix}:${names.modelQueue("m")}:wait`), undefined);
  });
});
