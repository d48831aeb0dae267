/** Handing out VMIDs for creates: PVE's own answer is only advisory. */
import { ProviderError } from "../errors.js";
import type { PveContext } from "./context.js";
import { resourcesSchema, vmidSchema } from "./schemas.js";

export class VmidAllocator {
  /** VMIDs this process is creating right now: never handed out twice. */
  private readonly inflight = new Set<number>();
  /** VMIDs PVE told us are taken ("already exists"). */
  private readonly taken = new Set<number>();

  constructor(private readonly ctx: Pick<PveContext, "cfg" | "client" | "store">) {}

  /** A VMID no one (we know of) uses; reserved in-process until the create ends. */
  async next(): Promise<number> {
    const { cfg, client, store } = this.ctx;
    const busy = (id: number) => this.inflight.has(id) || this.taken.has(id);
    let id: number | undefined;
    if (cfg.vmidRange) {
      const used = new Set(
        (await client.get("/cluster/resources", resourcesSchema, { type: "vm" })).map((r) => r.vmid).filter((v): v is number => v !== undefined),
      );
      const recorded = store.vmids("proxmox");
      for (let i = cfg.vmidRange.start; i <= cfg.vmidRange.end; i++) {
        if (!used.has(i) && !recorded.has(i) && !busy(i)) {
          id = i;
          break;
        }
      }
      if (id === undefined) throw new ProviderError("PVE_NO_VMID", `no free VMID in ${cfg.vmidRange.start}–${cfg.vmidRange.end}`, 503);
    } else {
      // Advisory (DESIGN §5): concurrent callers get the same answer; we step past our own.
      let candidate = await client.get("/cluster/nextid", vmidSchema);
      for (let i = 0; i < 10_000 && busy(candidate); i++) candidate++;
      id = candidate;
    }
    this.inflight.add(id);
    return id;
  }

  /** Another VM holds `id`: never offer it again. */
  markTaken(id: number): void {
    this.taken.add(id);
    this.inflight.delete(id);
  }

  /** The create with `id` ended, one way or the other. */
  release(id: number): void {
    this.inflight.delete(id);
  }
}
