/** Waiting for PVE tasks, also those whose UPID we never saw. */
import { pvePath, type TaskOutcome } from "./client.js";
import type { PveContext } from "./context.js";
import { taskListSchema } from "./schemas.js";

export function task(ctx: PveContext, upid: string, timeoutMs = ctx.cfg.taskTimeoutSec * 1000): Promise<TaskOutcome> {
  return ctx.client.waitTask(upid, { timeoutMs, intervalMs: ctx.pollMs, maxIntervalMs: Math.max(ctx.pollMs, 2_000) });
}

/**
 * Waits for the newest task of `type` on the VM (found in the node's task
 * list) when we never saw its UPID, e.g. after a 596. False when there is none.
 */
export async function awaitTaskOf(ctx: PveContext, node: string, vmid: number, type: string): Promise<boolean> {
  const tasks = await ctx.client.get(pvePath`/nodes/${node}/tasks`, taskListSchema, { vmid, typefilter: type, source: "all" });
  const newest = [...tasks].sort((a, b) => (b.starttime ?? 0) - (a.starttime ?? 0))[0];
  if (!newest) return false;
  await task(ctx, newest.upid);
  return true;
}
