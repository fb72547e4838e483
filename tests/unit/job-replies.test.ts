/**
 * A job's replies as the orchestrator takes them across attempts: after a continuation only the
 * new attempt's, from the seq it continues from; rebuilt from the job's stream (an adopting
 * orchestrator), each earlier attempt's below the seq the next one continued from, whatever else
 * the lost attempt stored.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { JobReplies } from "../../orchestrator/relay/job-replies.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { createLogger } from "../../shared/log.js";
import {
  decodeEnvelope,
  encodeContinuedFrom,
  encodeReply,
  encodeStarted,
  type ReplyEnvelope,
} from "../../shared/protocol/index.js";

const keyRing = new KeyRing([FernetKey.generate()]);
const log = createLogger("test", { level: "error" });
const jobId = "job-1";

function delta(attempt: number, seq: number): ReplyEnvelope {
  const text = encodeReply(
    keyRing,
    jobId,
    { kind: "delta", seq, text: `a${attempt}s${seq}` },
    attempt,
  );
  return decodeEnvelope(text) as ReplyEnvelope;
}

function from(attempt: number, seq: number): ReplyEnvelope {
  return decodeEnvelope(encodeContinuedFrom(jobId, attempt, seq)) as ReplyEnvelope;
}

function replies(attempt: number) {
  const taken: string[] = [];
  let started = 0;
  const target = new JobReplies(
    {
      jobId,
      keyRing,
      log,
      onStarted: () => {
        started += 1;
      },
      onReply: (message) => {
        if (message.kind === "delta") taken.push(message.text);
      },
      onUnreadable: () => assert.fail("unreadable"),
      onGap: () => {},
    },
    attempt,
  );
  return { target, taken, started: () => started };
}

describe("JobReplies across attempts", () => {
  it("after a continuation, takes the new attempt's replies from its seq on, and no other", () => {
    const { target, taken, started } = replies(1);
    for (const seq of [0, 1, 2]) target.receive(delta(1, seq));
    target.restart(2, 3);
    assert.equal(target.next, 3);
    // The lost attempt's late replies (beyond what was taken) and repeats: not the job's.
    target.receive(delta(1, 3));
    target.receive(delta(1, 1));
    target.receive(decodeEnvelope(encodeStarted(jobId, 1)) as ReplyEnvelope);
    target.receive(decodeEnvelope(encodeStarted(jobId, 2)) as ReplyEnvelope);
    for (const seq of [3, 4]) target.receive(delta(2, seq));
    assert.deepEqual(taken, ["a1s0", "a1s1", "a1s2", "a2s3", "a2s4"]);
    assert.equal(started(), 1, "the current attempt's started notice only");
  });

  it("rebuilt from the stream, takes each attempt's replies below the next one's mark", () => {
    const { target, taken } = replies(3);
    // The relay hands the marks first (see `ReplyRelay.backfill`), then the entries in order.
    target.receive(from(2, 2));
    target.receive(from(3, 4));
    for (const seq of [0, 1, 2, 3]) target.receive(delta(1, seq));
    for (const seq of [2, 3, 4, 5]) target.receive(delta(2, seq));
    for (const seq of [4, 5]) target.receive(delta(3, seq));
    assert.deepEqual(taken, ["a1s0", "a1s1", "a2s2", "a2s3", "a3s4", "a3s5"]);
  });

  it("without the marks, takes the current attempt's replies only (a job run anew from 0)", () => {
    const { target, taken } = replies(2);
    for (const seq of [0, 1]) target.receive(delta(1, seq));
    for (const seq of [0, 1]) target.receive(delta(2, seq));
    assert.deepEqual(taken, ["a2s0", "a2s1"]);
  });
});
