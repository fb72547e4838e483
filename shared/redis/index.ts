export * from "./cluster-safe.js";
export * from "./create-redis.js";
export * from "./find-redis.js";
export * from "./probe-redis.js";
export * from "./redis-server-process.js";
export * from "./redis-target.js";
export * from "./topology-changes.js";
