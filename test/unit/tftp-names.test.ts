import { describe, expect, it } from "vitest";
import { checkRequestName } from "../../src/tftp/names.js";

describe("checkRequestName refuses anything but a plain relative name", () => {
  it.each([
    ["parent segment", "../etc/passwd"],
    ["parent segment in the middle", "a/../../b"],
    ["parent segment at the end", "a/.."],
    ["bare parent", ".."],
    ["dot segment", "./undionly.kpxe"],
    ["dot segment in the middle", "a/./b"],
    ["absolute after the tolerated slash", "//etc/passwd"],
    ["only a slash", "/"],
    ["leading slash then traversal", "/../etc/passwd"],
    ["encoded dots", "%2e%2e/x"],
    ["encoded dots, upper case", "%2E%2E/etc/passwd"],
    ["encoded slash", "..%2fetc%2fpasswd"],
    ["encoded backslash", "a%5c..%5cb"],
    ["double encoding", "%252e%252e/x"],
    ["backslash", "a\\b"],
    ["backslash traversal", "..\\..\\windows\\win.ini"],
    ["NUL", "ipxe.efi\0.png"],
    ["newline", "ipxe.efi\nfake log line"],
    ["carriage return", "a\rb"],
    ["tab", "a\tb"],
    ["DEL", "a\u007fb"],
    ["C1 control", "a\u0085b"],
    ["trailing slash", "grub/"],
    ["double slash", "grub//grub.cfg"],
    ["empty", ""],
    ["decoder replacement character", "a\ufffdb"],
    ["too long", "a".repeat(1025)],
  ])("%s: %j", (_what, name) => {
    const r = checkRequestName(name);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason.length).toBeGreaterThan(0);
  });
});

describe("checkRequestName accepts plain names", () => {
  it.each([
    ["undionly.kpxe", "undionly.kpxe"],
    ["grub/x86_64-efi/normal.mod", "grub/x86_64-efi/normal.mod"],
    ["grub.cfg-01-52-54-00-12-34-56", "grub.cfg-01-52-54-00-12-34-56"],
    // One leading slash is read relative to the root, as tftpd-hpa --secure does.
    ["/grub/grub.cfg", "grub/grub.cfg"],
    ["/etc/passwd", "etc/passwd"],
    ["...", "..."],
    ["a..b", "a..b"],
    ["..hidden", "..hidden"],
    ["100%", "100%"],
    ["bööt.efi", "bööt.efi"],
    ["a".repeat(1024), "a".repeat(1024)],
  ])("%j → %j", (name, expected) => {
    expect(checkRequestName(name)).toEqual({ ok: true, name: expected });
  });
});
