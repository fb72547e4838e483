/**
 * A flood of huge bodies from a process of its own (so the flood's own work does not slow the
 * test that measures the server): `node flood-client.js URL CLIENTS BYTES`. Each of CLIENTS
 * loops posting BYTES of `[` until stdin closes. Prints `flooding` once the server has answered
 * one post of every client, and the status counts as JSON at the end.
 */
import http from "node:http";

const [url = "", clients = "4", bytes = "8178892"] = process.argv.slice(2);
const body = Buffer.from("[".repeat(Number(bytes)));
const counts: Record<string, number> = {};
let flooding = true;
process.stdin.on("close", () => {
  flooding = false;
});
process.stdin.resume();

function post(): Promise<number> {
  return new Promise((resolve) => {
    const request = http.request(
      url,
      {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": body.length },
      },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
      },
    );
    request.on("error", () => resolve(0));
    request.end(body);
  });
}

let answering = 0;
await Promise.all(
  Array.from({ length: Number(clients) }, async () => {
    let first = true;
    while (flooding) {
      const status = String(await post());
      counts[status] = (counts[status] ?? 0) + 1;
      if (first) {
        first = false;
        answering += 1;
        if (answering === Number(clients)) process.stdout.write("flooding\n");
      }
    }
  }),
);
process.stdout.write(`${JSON.stringify(counts)}\n`);
