import { describe, expect, it } from "vitest";
import { planBoot } from "../../src/boot/plan.js";
import { renderGrubConfig, renderIpxeScript } from "../../src/boot/scripts.js";
import { render } from "../../src/boot/templates.js";
import { BootUrls } from "../../src/boot/urls.js";
import { mac, profile, settings } from "../helpers/fixtures.js";

const urls = new BootUrls("192.168.77.1", 8080);
const M = mac("52:54:00:12:34:56");
const machine = { mac: M, hostname: "node-1", profile: "rescue", next: "profile" as const, configToken: "TOKEN_abc-123" };
const t = settings().templates;

describe("boot plans and scripts", () => {
  it("puts talos.config with the machine's token after the profile's command line", () => {
    const plan = planBoot(machine, profile({ config: "/srv/node.yaml" }), urls);
    expect(plan).toMatchObject({
      mode: "install",
      cmdline: "console=ttyS0 talos.config=http://192.168.77.1:8080/boot/52-54-00-12-34-56/config/TOKEN_abc-123",
      kernelUrl: "http://192.168.77.1:8080/boot/52-54-00-12-34-56/kernel",
      initrds: [{ url: "http://192.168.77.1:8080/boot/52-54-00-12-34-56/initrd-0", name: "initrd-0" }],
    });
    expect(planBoot(machine, profile(), urls)).toMatchObject({ cmdline: "console=ttyS0" });
  });

  it("renders an iPXE script with bounded retries, initrd= names and a fall-through exit", () => {
    const script = renderIpxeScript(planBoot(machine, profile({ initrd: ["/a", "/b"] }), urls), t)!;
    expect(script.startsWith("#!ipxe\n")).toBe(true);
    const kernelLine = script.split("\n").find((l) => l.startsWith("kernel "))!;
    expect(kernelLine.split(" || ")).toHaveLength(4);
    expect(kernelLine).toContain("kernel http://192.168.77.1:8080/boot/52-54-00-12-34-56/kernel initrd=initrd-0 initrd=initrd-1 console=ttyS0");
    expect(kernelLine.endsWith("|| goto failed")).toBe(true);
    expect(script.match(/^initrd /gm)).toHaveLength(2);
    expect(script).toMatch(/^:failed$/m);
    expect(script).toMatch(/^exit 1$/m);
    expect(script).not.toMatch(/\{\{/);
  });

  it("renders local boot by exit, sanboot, or no script (http-404)", () => {
    const local = { ...machine, next: "local" as const };
    expect(renderIpxeScript(planBoot(local, profile(), urls), t)).toMatch(/^exit$/m);
    expect(renderIpxeScript(planBoot(local, profile({ localBoot: "sanboot" }), urls), t)).toMatch(/^sanboot --no-describe --drive 0x80/m);
    expect(renderIpxeScript(planBoot(local, profile({ localBoot: "http-404" }), urls), t)).toBeNull();
    expect(renderGrubConfig(planBoot(local, profile(), urls), t)).toMatch(/^\s*exit$/m);
  });

  it("renders a GRUB config that loads kernel and initrd over HTTP", () => {
    const cfg = renderGrubConfig(planBoot(machine, profile({ config: "/srv/node.yaml" }), urls), t);
    expect(cfg).toMatch(/^\s*linux \(http,192\.168\.77\.1:8080\)\/boot\/52-54-00-12-34-56\/kernel console=ttyS0 talos\.config=http:\/\/192\.168\.77\.1:8080\/boot\/52-54-00-12-34-56\/config\/TOKEN_abc-123$/m);
    expect(cfg).toMatch(/^\s*initrd \(http,192\.168\.77\.1:8080\)\/boot\/52-54-00-12-34-56\/initrd-0$/m);
    const noInitrd = renderGrubConfig(planBoot(machine, profile({ initrd: [] }), urls), t);
    expect(noInitrd).not.toMatch(/^\s*initrd /m);
  });

  it("refuses a template placeholder without a value, and leaves ${...} alone", () => {
    expect(() => render("{{a}} {{b}}", { a: 1 })).toThrow(/\{\{b\}\}/);
    expect(render("${net0/mac} {{a}}", { a: "x" })).toBe("${net0/mac} x");
  });
});
