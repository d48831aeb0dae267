/**
 * Reservation, shared by the providers: the VM's MAC (ours, from the
 * locally administered range, unless the request names one) and its host are
 * chosen and written to provider_vms before anything is created. A repeated
 * request gets the same record; one that contradicts it (another MAC or
 * role) is a conflict.
 */
import type { Mac } from "../boot/mac.js";
import type { VmRecord, VmStore } from "../store/vms.js";
import { VmConflictError } from "./errors.js";
import { allocateMac } from "./mac.js";
import type { ProviderKind, VmReservation, VmSpec } from "./types.js";

export interface ReserveDeps {
  store: VmStore;
  provider: ProviderKind;
  macPrefix: Uint8Array;
  /** MACs taken outside provider_vms (machines registered by hand). */
  macTaken: (mac: Mac) => boolean;
  random?: (n: number) => Uint8Array;
}

/** A repeated request must not contradict the record. */
export function checkRecord(rec: VmRecord, spec: VmSpec): VmRecord {
  const want = spec.networks[0]?.macaddr;
  if (want && want !== rec.mac) {
    throw new VmConflictError(`${spec.cluster}/${spec.name} was reserved with MAC ${rec.mac}, not ${want}`, { mac: rec.mac });
  }
  if (rec.role !== spec.role) throw new VmConflictError(`${spec.cluster}/${spec.name} was reserved as a ${rec.role}, not a ${spec.role}`);
  return rec;
}

export function reserveVm(deps: ReserveDeps, spec: VmSpec, chooseNode: (siblings: VmRecord[]) => string | null): { record: VmRecord; isNew: boolean } {
  const wantMac = spec.networks[0]?.macaddr;
  const res = deps.store.reserve({
    provider: deps.provider,
    cluster: spec.cluster,
    name: spec.name,
    role: spec.role,
    spec: spec as unknown as Record<string, unknown>,
    mac: wantMac ?? ((taken) => allocateMac(deps.macPrefix, (m) => taken(m) || deps.macTaken(m), deps.random)),
    chooseNode,
  });
  if (res.kind === "mac-in-use") {
    throw new VmConflictError(`MAC ${wantMac} is already used by ${res.by.provider} VM ${res.by.cluster}/${res.by.name}`, { mac: wantMac });
  }
  return { record: res.kind === "existing" ? checkRecord(res.record, spec) : res.record, isNew: res.kind === "reserved" };
}

export function reservationOf(rec: VmRecord, isNew: boolean): VmReservation {
  return { provider: rec.provider, cluster: rec.cluster, name: rec.name, role: rec.role, mac: rec.mac, node: rec.node, new: isNew };
}
