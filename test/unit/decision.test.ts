import { describe, expect, it } from "vitest";
import { decideDhcp, type DecisionContext } from "../../src/boot/decision.js";
import type { FirmwareFacts } from "../../src/boot/types.js";
import { BootUrls } from "../../src/boot/urls.js";
import { bootloaders, mac, profile, firmwareFacts } from "../helpers/fixtures.js";

const M = mac("52:54:00:12:34:56");
const facts = (over: Partial<FirmwareFacts> = {}) => firmwareFacts({ arch: 0, ...over });
const ctx = (over: Partial<DecisionContext> = {}): DecisionContext => ({
  profiles: { rescue: profile(), grubby: profile({ bootloader: "grub" }) },
  bootloaders: bootloaders().files,
  urls: new BootUrls("192.168.77.1", 8080),
  ...over,
});
const machine = { mac: M, profile: "rescue", bootfile: null };

describe("DHCP boot decision", () => {
  it("BIOS (arch 0) gets undionly.kpxe with PXE10 discovery control", () => {
    expect(decideDhcp(facts({ arch: 0 }), machine, ctx())).toEqual({
      kind: "offer",
      firmware: "bios",
      bootFile: "undionly.kpxe",
      pxeDiscoveryControl: true,
      vendorClass: "PXEClient",
    });
  });

  it("BIOS ignores a machine's EFI bootfile", () => {
    const a = decideDhcp(facts({ arch: 0 }), { ...machine, bootfile: "snponly.efi" }, ctx());
    expect(a).toMatchObject({ kind: "offer", bootFile: "undionly.kpxe" });
  });

  it.each([7, 9])("UEFI x64 (arch %i) gets ipxe.efi without option 43", (arch) => {
    expect(decideDhcp(facts({ arch }), machine, ctx())).toEqual({
      kind: "offer",
      firmware: "uefi",
      bootFile: "ipxe.efi",
      pxeDiscoveryControl: false,
      vendorClass: "PXEClient",
    });
  });

  it("UEFI x64 honours the machine's bootfile", () => {
    expect(decideDhcp(facts({ arch: 7 }), { ...machine, bootfile: "snponly.efi" }, ctx())).toMatchObject({ bootFile: "snponly.efi" });
  });

  it("a grub profile gives UEFI firmware GRUB's network image", () => {
    expect(decideDhcp(facts({ arch: 7 }), { ...machine, profile: "grubby" }, ctx())).toMatchObject({ bootFile: "grubnetx64.efi", firmware: "uefi" });
  });

  it("32-bit UEFI (arch 6) is not answered, with a reason", () => {
    expect(decideDhcp(facts({ arch: 6 }), machine, ctx())).toMatchObject({ kind: "ignore", reason: "unsupported-arch" });
  });

  it("arm64 UEFI (arch 11) without an arm64 binary is not answered and says why", () => {
    const a = decideDhcp(facts({ arch: 11 }), machine, ctx());
    expect(a).toMatchObject({ kind: "ignore", reason: "no-arm64-binary" });
    expect(a.kind === "ignore" && a.detail).toMatch(/bootloaders\.arm64Efi/);
  });

  it("arm64 UEFI (arch 11) with an arm64 binary gets it", () => {
    const c = ctx({ bootloaders: bootloaders(["ipxe.efi", "ipxe-arm64.efi"]).files });
    expect(decideDhcp(facts({ arch: 11 }), machine, c)).toMatchObject({ kind: "offer", bootFile: "ipxe-arm64.efi", firmware: "uefi" });
  });

  it("UEFI HTTP boot (arch 16) gets HTTPClient and an http URL of the EFI binary", () => {
    expect(decideDhcp(facts({ arch: 16, httpClient: true }), machine, ctx())).toEqual({
      kind: "offer",
      firmware: "uefi-http",
      bootFile: "http://192.168.77.1:8080/bootloaders/ipxe.efi",
      pxeDiscoveryControl: false,
      vendorClass: "HTTPClient",
    });
  });

  it("arm64 HTTP boot (arch 19) needs the arm64 binary", () => {
    expect(decideDhcp(facts({ arch: 19, httpClient: true }), machine, ctx())).toMatchObject({ kind: "ignore", reason: "no-arm64-binary" });
    const c = ctx({ bootloaders: bootloaders(["ipxe-arm64.efi"]).files });
    expect(decideDhcp(facts({ arch: 19, httpClient: true }), machine, c)).toMatchObject({
      bootFile: "http://192.168.77.1:8080/bootloaders/ipxe-arm64.efi",
    });
  });

  it("iPXE gets the http URL of its own script, whatever the firmware arch", () => {
    for (const arch of [0, 7, 9]) {
      expect(decideDhcp(facts({ arch, ipxe: true }), machine, ctx())).toEqual({
        kind: "offer",
        firmware: "ipxe",
        bootFile: "http://192.168.77.1:8080/boot/52-54-00-12-34-56/boot.ipxe",
        pxeDiscoveryControl: false,
        vendorClass: "PXEClient",
      });
    }
  });

  it("a boot file that is not available is not offered", () => {
    const c = ctx({ bootloaders: bootloaders(["undionly.kpxe"]).files });
    expect(decideDhcp(facts({ arch: 7 }), machine, c)).toMatchObject({ kind: "ignore", reason: "missing-bootloader" });
  });

  it("a machine whose profile vanished is not answered", () => {
    expect(decideDhcp(facts(), { ...machine, profile: "gone" }, ctx())).toMatchObject({ kind: "ignore", reason: "unknown-profile" });
  });
});
