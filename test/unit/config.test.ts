import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadEmbeddedDefault, packageRoot, parseConfigText } from "../../src/config/load.js";
import type { NetworkInterfaceInfo } from "node:os";

const iface = (address: string, internal = false): NetworkInterfaceInfo => ({
  address,
  netmask: "255.255.255.0",
  family: "IPv4",
  mac: "52:54:00:00:00:01",
  internal,
  cidr: `${address}/24`,
});
const one = { lo: [iface("127.0.0.1", true)], eth0: [iface("192.168.77.1")] };

function problems(text: string, interfaces: Record<string, NetworkInterfaceInfo[]> = one): string[] {
  try {
    parseConfigText(text, "test.yaml", { interfaces, checkFiles: false });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const base = `
profiles:
  rescue: { kernel: /srv/vmlinuz, initrd: [/srv/initrd.img], cmdline: "console=ttyS0", config: /srv/node.yaml }
machines:
  - { mac: "52:54:00:12:34:56", profile: rescue, hostname: node-1, bootfile: snponly.efi }
`;

describe("configuration", () => {
  it("accepts the documented keys and fills defaults", () => {
    const cfg = parseConfigText(`server: { address: 10.1.2.3, interface: br0 }\n${base}`, "t", { interfaces: one, checkFiles: false });
    expect(cfg.server).toEqual({ address: "10.1.2.3", interface: "br0" });
    expect(cfg.dhcp).toEqual({ enabled: true, port: 67, pxePort: 4011 });
    expect(cfg.tftp.port).toBe(69);
    expect(cfg.http.port).toBe(8080);
    expect(cfg.profiles.rescue).toMatchObject({ bootloader: "ipxe", once: false, localBoot: "exit" });
    expect(cfg.machines[0]!.mac).toBe("52:54:00:12:34:56");
    expect(cfg.unknownMachines).toBe("ignore");
  });

  it("names the key path and what was expected, for every problem at once", () => {
    const p = problems(`
server: { address: 999.1.1.1 }
dhcp: { port: 70000 }
profiles:
  rescue: { kernel: relative/path, bootloader: pxelinux }
machines:
  - { mac: "52:54:00:12:34", profile: rescue }
  - { mac: "52:54:00:12:34:56", profile: nope }
unknownMachines: nonsense
extra: 1
`);
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^server\.address: expected an IPv4 address/),
        expect.stringMatching(/^dhcp\.port: /),
        expect.stringMatching(/^profiles\.rescue\.kernel: expected an absolute file path or an http/),
        expect.stringMatching(/^profiles\.rescue\.bootloader: /),
        expect.stringMatching(/^machines\[0\]\.mac: expected a MAC address/),
        expect.stringMatching(/^\(top level\): unknown key 'extra'/),
      ]),
    );
  });

  it("checks cross references after the schema", () => {
    const p = problems(`${base}  - { mac: "52-54-00-12-34-56", profile: nope }\nunknownMachines: nonsense\n`);
    expect(p).toEqual([
      "machines[1].mac: 52:54:00:12:34:56 is also machines[0]",
      "machines[1].profile: no profile named 'nope' (profiles: rescue)",
      "unknownMachines: expected 'ignore' or a profile name, got 'nonsense'",
    ]);
  });

  it("takes server.address from the one interface that is up", () => {
    expect(parseConfigText(base, "t", { interfaces: one, checkFiles: false }).server.address).toBe("192.168.77.1");
  });

  it("refuses to guess between several interfaces", () => {
    const p = problems(base, { ...one, eth1: [iface("10.0.0.1")] });
    expect(p).toEqual([expect.stringMatching(/^server\.address: several addresses could be ours \(eth0 192\.168\.77\.1, eth1 10\.0\.0\.1\) — set server\.address and server\.interface/)]);
  });

  it("uses server.interface to choose among several", () => {
    const cfg = parseConfigText(`server: { interface: eth1 }\n${base}`, "t", { interfaces: { ...one, eth1: [iface("10.0.0.1")] }, checkFiles: false });
    expect(cfg.server.address).toBe("10.0.0.1");
  });

  it("reports missing files when asked to check them", () => {
    try {
      parseConfigText(`server: { address: 10.0.0.1 }\nbootloaders: { dir: /nonexistent-dir }\n${base}`, "t", { interfaces: one });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^bootloaders\.dir: \/nonexistent-dir is not a directory \(Debian package 'ipxe'/),
          "profiles.rescue.kernel: /srv/vmlinuz does not exist",
          "profiles.rescue.config: /srv/node.yaml does not exist",
        ]),
      );
    }
  });

  it("rejects YAML syntax errors and duplicate keys with a YAML prefix", () => {
    expect(problems("server: {\n")[0]).toMatch(/^YAML: /);
    expect(problems("http: { port: 1 }\nhttp: { port: 2 }\n")[0]).toMatch(/^YAML: .*[Dd]uplicate|^YAML: .*unique/);
  });

  it("has an embedded default that validates, with a state dir the user can write", () => {
    const cfg = loadEmbeddedDefault({ interfaces: one, uid: 1000 });
    expect(cfg.source).toBe("embedded default");
    expect(cfg.server.address).toBe("192.168.77.1");
    expect(cfg.stateDir).toMatch(/talos-netboot$/);
    expect(cfg.stateDir).not.toBe("/var/lib/talos-netboot");
    expect(cfg.profiles.default!.kernel).toBe(join(cfg.stateDir, "boot", "vmlinuz"));
    const root = loadEmbeddedDefault({ interfaces: one, uid: 0 });
    expect(root.stateDir).toBe("/var/lib/talos-netboot");
    expect(root.profiles.default).toMatchObject({
      kernel: "/var/lib/talos-netboot/boot/vmlinuz",
      initrd: ["/var/lib/talos-netboot/boot/initramfs.xz"],
      config: "/var/lib/talos-netboot/boot/config.yaml",
    });
  });

  it("documents every key in config/example.yaml, which validates", () => {
    const text = readFileSync(join(packageRoot(), "config", "example.yaml"), "utf8");
    const cfg = parseConfigText(text, "example.yaml", { interfaces: one, checkFiles: false });
    expect(Object.keys(cfg.profiles)).toEqual(["talos-1-14", "rescue"]);
    expect(cfg.machines).toHaveLength(2);
  });

  it("reads empty lists written as bare keys (YAML null) as empty", () => {
    const cfg = parseConfigText("server: { address: 10.0.0.1 }\nprofiles:\nmachines:\napi:\n  tokens:\n", "t", { interfaces: one, checkFiles: false });
    expect(cfg.machines).toEqual([]);
    expect(cfg.profiles).toEqual({});
    expect(cfg.api.tokens).toEqual([]);
  });
});
