/**
 * VM requests (Moxxie's node template shapes), tags, safe-mode checks, the
 * Proxmox create parameters (DESIGN §5 formats), UPIDs and the providers
 * config section.
 */
import { describe, expect, it } from "vitest";
import { providersSchema } from "../../src/providers/config.js";
import { ProviderInputError, SafeModeError } from "../../src/providers/errors.js";
import { bootDiskOf, bootParam, createParams, parseBootOrder, parseNet } from "../../src/providers/proxmox/params.js";
import { formatUpid, parseUpid, taskSucceeded } from "../../src/providers/proxmox/upid.js";
import { parseVmSpec } from "../../src/providers/spec.js";
import { assertOwned, parseTagList, vmTags } from "../../src/providers/tags.js";
import type { Mac } from "../../src/boot/mac.js";

describe("VM requests", () => {
  it("accepts Moxxie's node template (enum names upper-case) and placement", () => {
    const s = parseVmSpec({
      cluster: "prod",
      name: "prod-cp-1",
      role: "CONTROL_PLANE",
      template: {
        cores: 4,
        memoryMB: 8192,
        disks: [{ interfaceType: "SCSI", slot: 0, storage: "ceph-vm", sizeGB: 64, ssd: true, iothread: true, discard: true }],
        networks: [{ model: "virtio", bridge: "vmbr1", vlan: 120, firewall: false }],
        imageSource: "ignored:for-netboot",
        cpuType: "host",
      },
      placement: { antiAffinity: "HARD", preferredNodes: ["pve1"], avoidNodes: [] },
      targetHost: "pve2",
    });
    expect(s).toMatchObject({
      role: "controlplane",
      cores: 4,
      memoryMB: 8192,
      cpuType: "host",
      disks: [{ interfaceType: "scsi", slot: 0, storage: "ceph-vm", sizeGB: 64, ssd: true, iothread: true, discard: true }],
      networks: [{ bridge: "vmbr1", vlan: 120, firewall: false, macaddr: undefined }],
      placement: { antiAffinity: "HARD", preferredNodes: ["pve1"], avoidNodes: [], targetHost: "pve2" },
      boot: "network",
    });
  });

  it("fills defaults and normalises", () => {
    const s = parseVmSpec({ cluster: "c", name: "w", role: "worker", tags: ["Env-Prod"], networks: [{ macaddr: "02-74-6E-AA-BB-CC" }] });
    expect(s).toMatchObject({ cores: 2, memoryMB: 4096, cpuType: "x86-64-v2-AES", firmware: undefined, tags: ["env-prod"] });
    expect(s.disks).toEqual([{ interfaceType: "scsi", slot: 0, storage: undefined, sizeGB: 20, ssd: true, iothread: true, discard: true }]);
    expect(s.networks[0]!.macaddr).toBe("02:74:6e:aa:bb:cc");
  });

  it("rejects what PVE or we would refuse, naming every field", () => {
    const bad = () =>
      parseVmSpec({
        cluster: "Prod_1",
        name: "x",
        role: "loadbalancer",
        tags: ["cluster-evil"],
        disks: [{ interfaceType: "ide", slot: 4, sizeGB: 1 }],
        networks: [{ macaddr: "01:00:5e:00:00:01" }],
      });
    expect(bad).toThrow(ProviderInputError);
    try {
      bad();
    } catch (e) {
      const problems = (e as ProviderInputError).details.problems as string[];
      expect(problems.map((p) => p.split(":")[0]), problems.join("\n")).toEqual(expect.arrayContaining(["cluster", "role", "tags.0", "disks.0.slot", "networks.0.macaddr"]));
    }
    expect(() => parseVmSpec({ cluster: "c", name: "x", role: "worker", disks: [{ sizeGB: 1 }, { sizeGB: 2 }] })).toThrow(/scsi0 appears twice/);
  });
});

describe("tags and safe mode", () => {
  it("are PVE's: lower-case, sorted, unique; lists split on ; , and space", () => {
    expect(vmTags("demo", "worker", ["Env-X", "moxxie"])).toEqual(["cluster-demo", "env-x", "moxxie", "role-worker"]);
    expect(parseTagList("B;a, c  a")).toEqual(["a", "b", "c"]);
    expect(parseTagList(undefined)).toEqual([]);
  });

  it("lets through only VMs with the cluster's tag", () => {
    expect(assertOwned(["cluster-demo", "moxxie"], "demo", "VM 1", "stop")).toBe("demo");
    expect(assertOwned(["cluster-demo"], undefined, "VM 1", "stop")).toBe("demo");
    expect(() => assertOwned(["moxxie"], "demo", "VM 1", "stop")).toThrow(SafeModeError);
    expect(() => assertOwned(["cluster-other"], "demo", "VM 1", "stop")).toThrow(expect.objectContaining({ reason: expect.stringContaining("cluster-other") }));
    expect(() => assertOwned([], undefined, "VM 1", "destroy")).toThrow(SafeModeError);
    expect(() => assertOwned(["cluster-a", "cluster-b"], undefined, "VM 1", "destroy")).toThrow(/several/);
  });
});

describe("Proxmox create parameters (DESIGN §5)", () => {
  const defaults = { storage: "local-lvm", efiStorage: "local-efi", bridge: "vmbr0", vlan: 20, firmware: "uefi" as const };
  const mac = "02:74:6e:01:02:03" as Mac;

  it("UEFI VM with one SCSI disk", () => {
    const s = parseVmSpec({ cluster: "demo", name: "cp1", role: "controlplane" });
    expect(createParams(s, 123, mac, vmTags("demo", "controlplane", []), defaults)).toEqual({
      vmid: "123",
      name: "cp1",
      cores: "2",
      memory: "4096",
      cpu: "x86-64-v2-AES",
      ostype: "l26",
      net0: "virtio=02:74:6E:01:02:03,bridge=vmbr0,tag=20",
      scsihw: "virtio-scsi-single",
      scsi0: "local-lvm:20,ssd=1,iothread=1,discard=on",
      boot: "order=net0;scsi0",
      bios: "ovmf",
      machine: "q35",
      efidisk0: "local-efi:1,efitype=4m,pre-enrolled-keys=0",
      rng0: "source=/dev/urandom",
      tags: "cluster-demo;moxxie;role-controlplane",
    });
  });

  it("an untagged NIC (vlan: null) overrides the default VLAN; disk-first boot", () => {
    const s = parseVmSpec({ cluster: "demo", name: "w", role: "worker", boot: "disk", firmware: "bios", networks: [{ vlan: null, bridge: "vmbr5" }] });
    const p = createParams(s, 7, mac, [], defaults);
    expect(p.net0).toBe("virtio=02:74:6E:01:02:03,bridge=vmbr5");
    expect(p.boot).toBe("order=scsi0;net0");
  });

  it("reads configs back whatever PVE's key order", () => {
    expect(parseNet("virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,tag=20")).toEqual({ model: "virtio", mac: "bc:24:11:aa:bb:cc", bridge: "vmbr0", tag: 20 });
    expect(parseNet("bridge=vmbr0,model=e1000,macaddr=02:00:00:00:00:01")).toMatchObject({ model: "e1000", mac: "02:00:00:00:00:01" });
    expect(parseNet("virtio,bridge=vmbr0").mac).toBeNull();
    expect(parseBootOrder("order=scsi0;net0")).toBe("disk");
    expect(parseBootOrder("order=net0;scsi0")).toBe("network");
    expect(parseBootOrder("ncd")).toBe("network");
    expect(parseBootOrder(undefined)).toBeNull();
    expect(bootDiskOf({ boot: "order=net0;virtio1", virtio1: "x" })).toBe("virtio1");
    expect(bootDiskOf({ ide2: "none,media=cdrom", sata0: "local:1" })).toBe("sata0");
    expect(bootParam("network", "scsi0")).toBe("order=net0;scsi0");
  });
});

describe("UPIDs", () => {
  it("parse and format PVE's layout; the node is where the status lives", () => {
    const text = "UPID:pve2:000C1A2B:0ABCDEF01:6720A1B2:qmcreate:104:talos-netboot@pve!provisioner:";
    const u = parseUpid(text)!;
    expect(u).toEqual({ node: "pve2", pid: 0xc1a2b, pstart: 0xabcdef01, starttime: 0x6720a1b2, type: "qmcreate", id: "104", user: "talos-netboot@pve!provisioner" });
    expect(parseUpid(formatUpid({ ...u, pstart: 0x1234 }))).toEqual({ ...u, pstart: 0x1234 });
    expect(parseUpid("UPID:pve2:xyz")).toBeNull();
    expect(parseUpid(text.slice(0, -1))).toBeNull();
  });

  it("OK and WARNINGS: n succeed; everything else is a failure", () => {
    expect(taskSucceeded("OK")).toBe(true);
    expect(taskSucceeded("WARNINGS: 3")).toBe(true);
    expect(taskSucceeded("VM 100 already running")).toBe(false);
    expect(taskSucceeded("WARNINGS: x")).toBe(false);
    expect(taskSucceeded("unexpected status")).toBe(false);
  });
});

describe("providers config section", () => {
  const pve = { url: "https://pve1.example.net:8006", tokenId: "tn@pve!prov", tokenSecretFile: "/etc/tn/pve-token", fingerprint: `${"AB:".repeat(31)}CD`, nodes: ["pve1"] };

  it("parses with defaults", () => {
    expect(providersSchema.parse({ proxmox: pve, qemu: {} })).toMatchObject({
      proxmox: { storage: "local-lvm", bridge: "vmbr0", vlan: null, firmware: "uefi", maxConcurrentPerNode: 4, macPrefix: "02:74:6e" },
      qemu: { firmware: "uefi", accel: "auto", binary: "qemu-system-x86_64" },
    });
    expect(providersSchema.parse(undefined)).toEqual({});
  });

  it("demands TLS trust and exactly one secret source; refuses a path in the URL", () => {
    const issues = (v: unknown) => {
      const r = providersSchema.safeParse({ proxmox: v });
      return r.success ? [] : r.error.issues.map((i) => i.path.join("."));
    };
    expect(issues({ ...pve, fingerprint: undefined })).toContain("proxmox.fingerprint");
    expect(issues({ ...pve, caFile: "/etc/pve-root-ca.pem" })).toContain("proxmox.fingerprint");
    expect(issues({ ...pve, tokenSecret: "x" })).toContain("proxmox.tokenSecretFile");
    expect(issues({ ...pve, url: "https://pve1:8006/api2/json" })).toContain("proxmox.url");
    expect(issues({ ...pve, url: "http://pve1:8006" })).toContain("proxmox.url");
    expect(issues({ ...pve, macPrefix: "00:11:22" })).toContain("proxmox.macPrefix");
    expect(issues({ ...pve, tokenId: "root@pam" })).toContain("proxmox.tokenId");
    expect(issues({ ...pve, vmidRange: { start: 900, end: 800 } })).toContain("proxmox.vmidRange");
  });
});
