/**
 * Checks a base URL and drops its trailing slashes. Throws a `TypeError` saying what is wrong for
 * anything but a plain `http(s)://host[:port][/path]` URL: credentials would be printed in
 * messages (and fetch refuses them), and a query or fragment cannot take a route after it.
 */
export function normalizeBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError("the URL is not an absolute URL such as http://127.0.0.1:8000");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError("the URL must start with http:// or https://");
  }
  if (url.username !== "" || url.password !== "") {
    throw new TypeError("the URL must not hold credentials; use --api-key or RUNPOD_API_KEY");
  }
  if (url.search !== "" || url.hash !== "") {
    throw new TypeError("the URL must not have a query or fragment");
  }
  return url.href.replace(/\/+$/, "");
}

/** Whether calls to `baseUrl` cross the network unencrypted: `http://` to a host not this one. */
export function isCleartextRemote(baseUrl: string): boolean {
  const url = new URL(baseUrl);
  if (url.protocol !== "http:") return false;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return !(host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host));
}
