export * from "./errors.js";
export * from "./pool-error.js";
