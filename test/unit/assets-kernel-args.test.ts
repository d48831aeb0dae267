import { describe, expect, it } from "vitest";
import { buildPxeCmdline, Cmdline } from "../../src/assets/kernel-args.js";
import { parseTalosVersion } from "../../src/assets/version.js";

/**
 * DESIGN §4, sentence by sentence: "amd64 lines: 1.9 `…`; 1.10 the same +
 * `selinux=1`; 1.11 the 1.10 line without the three `ima_*`; 1.12 adds
 * `module.sig_enforce=1`; 1.13 adds `proc_mem.force_override=never`; 1.14
 * the 1.13 line without `init_on_alloc=1` and `nvme_core.io_timeout=…`.
 * arm64 uses `console=ttyAMA0 console=tty0`."
 */
const without = (line: string, ...words: string[]) => line.split(" ").filter((w) => !words.some((x) => w === x || (x.endsWith("…") && w.startsWith(x.slice(0, -1))))).join(" ");
const L = {} as Record<string, string>;
L["1.9"] = "talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on ima_template=ima-ng ima_appraise=fix ima_hash=sha512";
L["1.10"] = `${L["1.9"]} selinux=1`;
L["1.11"] = without(L["1.10"], "ima_template=ima-ng", "ima_appraise=fix", "ima_hash=sha512");
L["1.12"] = `${L["1.11"]} module.sig_enforce=1`;
L["1.13"] = `${L["1.12"]} proc_mem.force_override=never`;
L["1.14"] = without(L["1.13"], "init_on_alloc=1", "nvme_core.io_timeout=…");
const arm64 = (line: string) => line.replace("console=tty0", "console=ttyAMA0 console=tty0");

const versions: Array<[string, string]> = [
  ["1.9.6", "1.9"],
  ["1.10.9", "1.10"],
  ["1.11.6", "1.11"],
  ["1.12.11", "1.12"],
  ["1.13.10", "1.13"],
  ["1.14.7", "1.14"],
];

describe("PXE kernel command line per Talos version (DESIGN §4)", () => {
  it.each(versions)("Talos %s amd64 boots with the %s line", (version, minor) => {
    expect(buildPxeCmdline({ version: parseTalosVersion(version), arch: "amd64" })).toBe(L[minor]);
  });

  it.each(versions)("Talos %s arm64 boots with the %s line and the arm64 consoles", (version, minor) => {
    expect(buildPxeCmdline({ version: parseTalosVersion(version), arch: "arm64" })).toBe(arm64(L[minor]!));
  });

  it("1.14 differs from 1.13 exactly by init_on_alloc and nvme_core.io_timeout", () => {
    const a = new Set(buildPxeCmdline({ version: parseTalosVersion("1.13.10"), arch: "amd64" }).split(" "));
    const b = new Set(buildPxeCmdline({ version: parseTalosVersion("1.14.7"), arch: "amd64" }).split(" "));
    expect([...a].filter((w) => !b.has(w)).sort()).toEqual(["init_on_alloc=1", "nvme_core.io_timeout=4294967295"]);
    expect([...b].filter((w) => !a.has(w))).toEqual([]);
  });

  it("follows Talos's quirks for pre-releases: 1.14.0-beta.1 still has the 1.13 arguments", () => {
    expect(buildPxeCmdline({ version: parseTalosVersion("1.14.0-beta.1"), arch: "amd64" })).toBe(L["1.13"]);
  });

  it("applies the schematic's extra kernel args as Talos's imager does: console replaced in place, -arg removes, others appended", () => {
    const line = buildPxeCmdline({
      version: parseTalosVersion("1.14.7"),
      arch: "amd64",
      schematicArgs: ["console=ttyS0,115200", "-selinux", "net.ifnames=0"],
    });
    expect(line).toBe(without(L["1.14"]!, "selinux=1").replace("console=tty0", "console=ttyS0,115200") + " net.ifnames=0");
  });

  it("appends the profile's PXE args, then talos.config last", () => {
    const line = buildPxeCmdline({
      version: parseTalosVersion("1.13.10"),
      arch: "amd64",
      extraArgs: ["console=ttyS0", "-consoleblank", "talos.dashboard.disabled=1"],
      configUrl: "http://192.168.77.1:8080/boot/52-54-00-12-34-56/config/abc?x=1",
    });
    expect(line).toBe(
      `${without(L["1.13"]!, "consoleblank=0").replace("console=tty0", "console=tty0 console=ttyS0")} talos.dashboard.disabled=1 talos.config=http://192.168.77.1:8080/boot/52-54-00-12-34-56/config/abc?x=1`,
    );
  });

  it("uses the factory's line when it has one", () => {
    const factory = "talos.platform=metal console=tty0 from.factory=1";
    expect(buildPxeCmdline({ version: parseTalosVersion("1.14.7"), arch: "amd64", factoryCmdline: factory, extraArgs: ["a=b"] })).toBe(`${factory} a=b`);
  });

  it("prints valueless arguments bare and keeps repeated keys together (go-procfs)", () => {
    const c = new Cmdline("a= b=1 c b=2");
    expect(c.toString()).toBe("a b=1 b=2 c");
    c.appendAll(["-b=1"]);
    expect(c.toString()).toBe("a b=2 c");
  });
});
