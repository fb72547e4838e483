import type { JobStatus } from "../../shared/protocol/index.js";
import type { JobRecord } from "../jobs/job-record.js";

/** A job as RunPod's hosted API shows it on `/status` and `/runsync`. */
export interface JobStatusView {
  id: string;
  status: JobStatus;
  delayTime: number;
  executionTime: number;
  output?: unknown[];
  /** JSON text `{"code", "message"}`, so clients can branch on the code. */
  error?: string;
}

export function statusView(record: JobRecord): JobStatusView {
  const view: JobStatusView = {
    id: record.id,
    status: record.status,
    delayTime: record.delayMs,
    executionTime: record.executionMs,
  };
  if (record.terminal && (record.status !== "FAILED" || record.chunks.length > 0)) {
    view.output = [...record.chunks];
  }
  if (record.error !== undefined) view.error = JSON.stringify(record.error);
  return view;
}

/** The chunks produced since the previous `/stream` poll, in RunPod's `/stream` shape. */
export function streamView(record: JobRecord) {
  return {
    id: record.id,
    status: record.status,
    stream: record.takeStreamChunks().map((output) => ({ output })),
    ...(record.error === undefined ? {} : { error: JSON.stringify(record.error) }),
  };
}
