/**
 * The local stack behind the encrypting OpenAI proxy, as the OpenAI tests use it: the stack, a
 * recording relay between the proxy and the pool (it shows that only ciphertext crosses), the
 * proxy, and the official `openai` client pointed at it.
 */
import OpenAI from "openai";
import { OpenAiProxy, PoolClient } from "../../client/index.js";
import { RecordingRelay } from "./recording-relay.js";
import { TestStack } from "./stack.js";

export class ProxiedStack {
  #closing: Promise<void> | undefined;

  private constructor(
    readonly stack: TestStack,
    readonly relay: RecordingRelay,
    readonly proxy: OpenAiProxy,
    readonly openai: OpenAI,
  ) {}

  /** Starts the stack with `options` (as {@link TestStack.start}), then the relay and the proxy. */
  static async start(options: Parameters<typeof TestStack.start>[0]): Promise<ProxiedStack> {
    const stack = await TestStack.start(options);
    let relay: RecordingRelay | undefined;
    try {
      relay = await RecordingRelay.start(stack.url);
      const client = new PoolClient({
        baseUrl: relay.url,
        keyRing: stack.keyRing,
        streamWaitMs: 2000,
      });
      const proxy = await OpenAiProxy.start({ client, keyRing: stack.keyRing }, "127.0.0.1", 0);
      const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
      return new ProxiedStack(stack, relay, proxy, openai);
    } catch (error) {
      await relay?.close();
      await stack.stop();
      throw error;
    }
  }

  /** Closes the proxy, the relay and the stack, in that order (once). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.proxy.close();
      await this.relay.close();
      await this.stack.stop();
    })();
    return this.#closing;
  }
}
