import { describe, expect, it } from "vitest";
import type { TftpOptions } from "../../src/tftp/codec.js";
import { negotiate } from "../../src/tftp/options.js";

const limits = { maxBlksize: 65464, maxWindowsize: 64 };

function opts(pairs: Record<string, string>): TftpOptions {
  return new Map(Object.entries(pairs).map(([name, value]) => [name.toLowerCase(), { name, value }]));
}

describe("negotiate", () => {
  it("without options: RFC 1350 defaults and no OACK", () => {
    expect(negotiate(new Map(), 1000, limits)).toEqual({ blksize: 512, windowsize: 1, timeoutMs: undefined, oack: [] });
  });

  it("grants what EDK2 asks (blksize 1468, windowsize 4) and answers tsize with the real size", () => {
    const n = negotiate(opts({ blksize: "1468", windowsize: "4", tsize: "0" }), 123456, limits);
    expect(n.blksize).toBe(1468);
    expect(n.windowsize).toBe(4);
    expect(n.oack).toEqual([
      { name: "blksize", value: "1468" },
      { name: "windowsize", value: "4" },
      { name: "tsize", value: "123456" },
    ]);
  });

  it("echoes option names in the client's spelling", () => {
    expect(negotiate(opts({ BLKSIZE: "1432" }), 1, limits).oack).toEqual([{ name: "BLKSIZE", value: "1432" }]);
  });

  it.each([
    ["65464", 65464],
    ["65465", 65464],
    ["99999999", 65464],
    ["8", 8],
  ])("blksize %s → %d", (asked, granted) => {
    expect(negotiate(opts({ blksize: asked }), 1, limits).blksize).toBe(granted);
  });

  it("caps blksize and windowsize at the server's limits", () => {
    const n = negotiate(opts({ blksize: "9000", windowsize: "1000" }), 1, { maxBlksize: 1468, maxWindowsize: 16 });
    expect(n).toMatchObject({ blksize: 1468, windowsize: 16 });
    expect(n.oack).toEqual([
      { name: "blksize", value: "1468" },
      { name: "windowsize", value: "16" },
    ]);
  });

  it.each([
    ["blksize", "7"],
    ["blksize", "0"],
    ["blksize", "abc"],
    ["blksize", "0x400"],
    ["blksize", "-512"],
    ["blksize", ""],
    ["windowsize", "0"],
    ["timeout", "0"],
    ["timeout", "256"],
    ["timeout", "1.5"],
  ])("ignores %s=%j and keeps the default", (name, value) => {
    const n = negotiate(opts({ [name]: value }), 1, limits);
    expect(n).toEqual({ blksize: 512, windowsize: 1, timeoutMs: undefined, oack: [] });
  });

  it("accepts timeout 1..255 seconds as asked", () => {
    expect(negotiate(opts({ timeout: "1" }), 1, limits).timeoutMs).toBe(1000);
    const n = negotiate(opts({ timeout: "255" }), 1, limits);
    expect(n.timeoutMs).toBe(255_000);
    expect(n.oack).toEqual([{ name: "timeout", value: "255" }]);
  });

  it("ignores unknown options and does not acknowledge them", () => {
    const n = negotiate(opts({ multicast: "", rollover: "0", blksize: "1024" }), 1, limits);
    expect(n.oack).toEqual([{ name: "blksize", value: "1024" }]);
  });
});
