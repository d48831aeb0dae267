import { describe, expect, it } from "vitest";
import { formatBytes, formatDuration, pairProgress, progressLine, ProgressReporter } from "../../src/assets/progress.js";

describe("CLI download progress", () => {
  it("formats bytes, rate and ETA", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(3 * 1024 * 1024)).toBe("3.0 MiB");
    expect(formatDuration(75)).toBe("1m15s");
    expect(progressLine("k", 25 * 1024 * 1024, 100 * 1024 * 1024, 5)).toBe("k  25.0 MiB / 100.0 MiB  25%  5.0 MiB/s  ETA 15s");
    expect(progressLine("k", 1024, undefined, 0)).toBe("k  1.0 KiB  0 B/s");
  });

  it("writes a line per tenth when not on a terminal", () => {
    const lines: string[] = [];
    let t = 0;
    const r = new ProgressReporter({ write: (s) => lines.push(s), isTTY: false }, "x", () => t);
    for (let b = 0; b <= 1000; b += 7) {
      t += 1;
      r.update(b, 1000);
    }
    r.update(1000, 1000);
    r.done();
    expect(lines).toHaveLength(11);
    expect(lines.every((l) => l.endsWith("\n") && !l.includes("\r"))).toBe(true);
    expect(lines.at(-1)).toMatch(/100%/);
  });

  it("redraws one line on a terminal, at most ten times a second, and ends it", () => {
    const out: string[] = [];
    let t = 0;
    const r = new ProgressReporter({ write: (s) => out.push(s), isTTY: true }, "x", () => t);
    for (let i = 1; i <= 100; i++) {
      t += 10;
      r.update(i * 10, 1000);
    }
    r.done();
    expect(out.slice(0, -1).every((s) => s.startsWith("\r\x1b[2K"))).toBe(true);
    expect(out.length - 1).toBeLessThanOrEqual(11);
    expect(out.at(-2)).toMatch(/100%/);
    expect(out.at(-1)).toBe("\n");
  });

  it("sums a kernel and initramfs, with a total once both are known", () => {
    const seen: Array<[number, number | undefined]> = [];
    const p = pairProgress((b, t) => seen.push([b, t]));
    p("kernel", { bytes: 10, total: 100 });
    p("initramfs", { bytes: 5, total: undefined });
    p("initramfs", { bytes: 20, total: 300 });
    expect(seen).toEqual([
      [10, undefined],
      [15, undefined],
      [30, 400],
    ]);
  });
});
