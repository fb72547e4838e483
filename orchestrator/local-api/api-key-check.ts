export { createApiKeyCheck } from "../../shared/auth/api-key-check.js";
