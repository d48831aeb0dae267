/** The shapes of PVE's answers that the provider reads, checked at the edge. */
import { z } from "zod";

export const vmidSchema = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]);
export const nodesSchema = z.array(z.object({ node: z.string(), status: z.string().optional() }).loose());
export const vmListSchema = z.array(
  z.object({ vmid: vmidSchema, name: z.string().optional(), status: z.string().optional(), tags: z.string().optional(), lock: z.string().optional() }).loose(),
);
export const configSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String));
export const statusSchema = z.object({ status: z.string(), qmpstatus: z.string().optional(), name: z.string().optional(), tags: z.string().optional(), lock: z.string().optional() }).loose();
export const upidSchema = z.string().min(1);
export const taskListSchema = z.array(z.object({ upid: z.string(), type: z.string().optional(), starttime: z.number().optional(), status: z.string().optional() }).loose());
export const resourcesSchema = z.array(z.object({ vmid: vmidSchema.optional(), type: z.string().optional() }).loose());

export type PveConfig = Record<string, string>;

/** Where a VM is and what it is, after the ownership check. */
export interface Located {
  node: string;
  vmid: number;
  cluster: string;
  name: string;
  config: PveConfig;
}
