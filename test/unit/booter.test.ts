import { describe, expect, it } from "vitest";
import type { FirmwareFacts } from "../../src/boot/types.js";
import { booterWithStore, mac, profile, firmwareFacts } from "../helpers/fixtures.js";

const M = mac("52:54:00:12:34:56");
const facts = (over: Partial<FirmwareFacts> = {}) => firmwareFacts({ arch: 7, ...over });

describe("Booter", () => {
  it("stays silent for an unknown MAC but records that it was seen", () => {
    const { booter, store } = booterWithStore();
    expect(booter.answerDhcp(facts())).toMatchObject({ kind: "ignore", reason: "unknown-machine" });
    booter.answerDhcp(facts());
    const unknown = store.listUnknown();
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatchObject({ mac: M, count: 2, lastFacts: { arch: 7 } });
    expect(store.list()).toHaveLength(0);
  });

  it("registers an unknown machine as discovered when unknownMachines names a profile", () => {
    const { booter, store } = booterWithStore({ unknownMachines: "rescue" });
    expect(booter.answerDhcp(facts())).toMatchObject({ kind: "offer", bootFile: "ipxe.efi" });
    expect(store.get(M)).toMatchObject({ source: "discovered", profile: "rescue" });
  });

  it("records dhcp-offer on 67 and dhcp-4011 on the PXE port", () => {
    const { booter, store } = booterWithStore();
    store.upsert({ mac: M, profile: "rescue", hostname: "node-1", bootfile: null, source: "api" });
    booter.answerDhcp(facts());
    booter.answerDhcp(facts({ pxePort: true }));
    const steps = store.timeline(M);
    expect(steps.map((s) => s.step)).toEqual(["dhcp-offer", "dhcp-4011"]);
    expect(steps[0]!.details).toEqual({ arch: 7, firmware: "uefi", bootFile: "ipxe.efi" });
  });

  it("records why an arm64 machine got no answer", () => {
    const { booter, store } = booterWithStore();
    store.upsert({ mac: M, profile: "rescue", hostname: null, bootfile: null, source: "api" });
    booter.answerDhcp(facts({ arch: 11 }));
    expect(store.timeline(M)[0]).toMatchObject({ step: "dhcp-ignored", details: { reason: "no-arm64-binary" } });
  });

  it("serves a config only with the machine's token, and the first fetch is the check-in", () => {
    const { booter, store } = booterWithStore();
    const m = store.upsert({ mac: M, profile: "rescue", hostname: null, bootfile: null, source: "api" });
    expect(booter.config(M, "not-the-token")).toEqual({ ok: false, reason: "wrong token" });
    expect(booter.config(M, m.configToken.slice(0, -1))).toMatchObject({ ok: false });
    expect(booter.config(M, m.configToken)).toEqual({ ok: true, source: { path: "/srv/node.yaml" }, firstFetch: true });
    expect(booter.config(M, m.configToken)).toMatchObject({ ok: true, firstFetch: false });
    expect(store.timeline(M).map((e) => e.step)).toEqual(["config-denied", "config-denied", "config", "config"]);
  });

  it("with once: true, the config fetch turns the next boots local", async () => {
    const { booter, store } = booterWithStore({ profiles: { rescue: profile({ config: "/srv/node.yaml", once: true }) } });
    const m = store.upsert({ mac: M, profile: "rescue", hostname: "node-1", bootfile: null, source: "api" });
    expect((await booter.ipxeScript(M)).plan?.mode).toBe("install");
    booter.config(M, m.configToken);
    expect(store.get(M)!.next).toBe("local");
    const script = await booter.ipxeScript(M);
    expect(script.plan?.mode).toBe("local");
    expect(script.body).toMatch(/^exit$/m);
    expect(store.timeline(M).at(-1)!.step).toBe("local-boot");
  });

  it("with once: true and no config, the last boot file completes the install", () => {
    const { booter, store } = booterWithStore({ profiles: { rescue: profile({ once: true, initrd: ["/a", "/b"] }) } });
    store.upsert({ mac: M, profile: "rescue", hostname: null, bootfile: null, source: "api" });
    booter.bootFileSent(M, "kernel", 10, true);
    booter.bootFileSent(M, 0, 10, true);
    expect(store.get(M)!.next).toBe("profile");
    booter.bootFileSent(M, 1, 10, false);
    expect(store.get(M)!.next).toBe("profile");
    booter.bootFileSent(M, 1, 10, true);
    expect(store.get(M)!.next).toBe("local");
  });

  it("http-404 local boot answers no script", async () => {
    const { booter, store } = booterWithStore({ profiles: { rescue: profile({ localBoot: "http-404" }) } });
    store.upsert({ mac: M, profile: "rescue", hostname: null, bootfile: null, source: "api" });
    store.setNext(M, "local");
    expect((await booter.ipxeScript(M)).body).toBeNull();
  });

  it("resolves TFTP boot binaries by map lookup and per-MAC GRUB configs by name", async () => {
    const { booter, store } = booterWithStore();
    store.upsert({ mac: M, profile: "rescue", hostname: "node-1", bootfile: null, source: "api" });
    expect(await booter.resolve("ipxe.efi", { address: "10.0.0.5", port: 1000 })).toEqual({
      ok: true,
      source: { kind: "file", path: "/usr/lib/ipxe/ipxe.efi" },
    });
    expect(await booter.resolve("missing.efi", { address: "10.0.0.5", port: 1000 })).toMatchObject({ ok: false, code: 1 });
    const grub = await booter.resolve("grub/grub.cfg-01-52-54-00-12-34-56", { address: "10.0.0.5", port: 1000 });
    expect(grub.ok && grub.source.kind === "buffer" && grub.source.data.toString()).toMatch(/linux \(http,192\.168\.77\.1:8080\)\/boot\/52-54-00-12-34-56\/kernel/);
    const other = await booter.resolve("grub/grub.cfg-01-aa-bb-cc-dd-ee-ff", { address: "10.0.0.5", port: 1000 });
    expect(other).toMatchObject({ ok: false, code: 1 });
    const generic = await booter.resolve("grub/grub.cfg", { address: "10.0.0.5", port: 1000 });
    expect(generic.ok && generic.source.kind === "buffer" && generic.source.data.toString()).toMatch(
      /configfile \(http,192\.168\.77\.1:8080\)\/boot\/\$\{net_default_mac\}\/grub\.cfg/,
    );
  });

  it("puts a completed TFTP transfer on the timeline of the MAC behind the client address", async () => {
    let asked = "";
    const { booter, store } = booterWithStore({}, async (ip) => {
      asked = ip;
      return M;
    });
    store.upsert({ mac: M, profile: "rescue", hostname: null, bootfile: null, source: "api" });
    booter.completed({ name: "ipxe.efi", client: { address: "192.168.77.50", port: 2000 }, bytes: 1234, blksize: 1468, windowsize: 4 });
    for (let i = 0; i < 500 && store.timeline(M).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(asked).toBe("192.168.77.50");
    expect(store.timeline(M)[0]).toMatchObject({ step: "tftp", details: { file: "ipxe.efi", bytes: 1234, blksize: 1468 } });
  });
});
