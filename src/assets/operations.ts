import { randomUUID } from "node:crypto";

export type OperationStatus = "PENDING" | "RUNNING" | "COMPLETED" | "FAILED";

/** A long-running job the API answered 202 for; polled at GET /api/v1/operations/{id}. */
export interface Operation {
  operationId: string;
  kind: string;
  status: OperationStatus;
  /** What it works on, e.g. `{version, arch, schematic}`. */
  subject: Record<string, unknown>;
  progress: { bytes: number; total: number | null; percentage: number | null };
  startTime: string;
  endTime: string | null;
  errorMessage: string | null;
  result: unknown;
}

/**
 * In-memory operations, newest kept: a restart forgets them (the work they
 * did — cached files — persists). Bounded so a polling client cannot grow it.
 */
export class Operations {
  private readonly ops = new Map<string, Operation>();

  constructor(private readonly max = 200) {}

  get(id: string): Operation | undefined {
    return this.ops.get(id);
  }

  /** Starts `work` now; its progress reports and outcome land in the operation. */
  start(kind: string, subject: Record<string, unknown>, work: (progress: (bytes: number, total: number | null) => void) => Promise<unknown>): Operation {
    const op: Operation = {
      operationId: randomUUID(),
      kind,
      status: "RUNNING",
      subject,
      progress: { bytes: 0, total: null, percentage: null },
      startTime: new Date().toISOString(),
      endTime: null,
      errorMessage: null,
      result: null,
    };
    this.ops.set(op.operationId, op);
    while (this.ops.size > this.max) this.ops.delete(this.ops.keys().next().value!);
    const progress = (bytes: number, total: number | null) => {
      op.progress = { bytes, total, percentage: total ? Math.min(100, Math.floor((bytes * 100) / total)) : null };
    };
    void work(progress).then(
      (result) => {
        op.status = "COMPLETED";
        op.result = result;
        op.endTime = new Date().toISOString();
        if (op.progress.total !== null) op.progress = { ...op.progress, bytes: op.progress.total, percentage: 100 };
      },
      (err: unknown) => {
        op.status = "FAILED";
        op.errorMessage = (err as Error).message;
        op.endTime = new Date().toISOString();
      },
    );
    return op;
  }
}
