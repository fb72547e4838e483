export * from "./errors.js";
export * from "./http-status.js";
export * from "./listen-error.js";
export * from "./message-of.js";
export * from "./pool-error.js";
