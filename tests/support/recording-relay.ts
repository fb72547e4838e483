/**
 * An HTTP relay that forwards every call to a target and records both bodies, as text: what a
 * network observer between two parts (the proxy and the pool) would see.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface RelayedCall {
  method: string;
  path: string;
  requestBody: string;
  status: number;
  responseBody: string;
}

export class RecordingRelay {
  readonly calls: RelayedCall[] = [];
  readonly #server: http.Server;

  private constructor(target: string) {
    this.#server = http.createServer(async (request, response) => {
      const parts: Buffer[] = [];
      for await (const part of request) parts.push(part as Buffer);
      const requestBody = Buffer.concat(parts).toString("utf8");
      const headers = new Headers();
      for (const [name, value] of Object.entries(request.headers)) {
        if (typeof value === "string" && !["host", "content-length", "connection"].includes(name)) {
          headers.set(name, value);
        }
      }
      try {
        const answer = await fetch(`${target}${request.url ?? "/"}`, {
          method: request.method ?? "GET",
          headers,
          ...(requestBody === "" ? {} : { body: requestBody }),
        });
        const responseBody = await answer.text();
        this.calls.push({
          method: request.method ?? "GET",
          path: request.url ?? "/",
          requestBody,
          status: answer.status,
          responseBody,
        });
        response.writeHead(answer.status, {
          "content-type": answer.headers.get("content-type") ?? "application/json",
        });
        response.end(responseBody);
      } catch {
        response.writeHead(502).end();
      }
    });
  }

  static async start(target: string): Promise<RecordingRelay> {
    const relay = new RecordingRelay(target);
    await new Promise<void>((resolve) => relay.#server.listen(0, "127.0.0.1", resolve));
    return relay;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Everything that crossed the relay, both ways, as one text. */
  get traffic(): string {
    return this.calls
      .map((call) => `${call.method} ${call.path}\n${call.requestBody}\n${call.responseBody}`)
      .join("\n");
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
