/**
 * Download progress for the CLI: one redrawn line (bytes, rate, ETA) on a
 * terminal, plain lines at every tenth otherwise (logs and CI stay short).
 */
export interface ProgressSink {
  write(text: string): void;
  isTTY?: boolean;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** `label  12.0 MiB / 80.0 MiB  15%  4.5 MiB/s  ETA 15s` */
export function progressLine(label: string, bytes: number, total: number | undefined, elapsedSeconds: number): string {
  const rate = elapsedSeconds > 0 ? bytes / elapsedSeconds : 0;
  const parts = [label, total !== undefined ? `${formatBytes(bytes)} / ${formatBytes(total)}` : formatBytes(bytes)];
  if (total) parts.push(`${Math.min(100, Math.floor((bytes * 100) / total))}%`);
  parts.push(`${formatBytes(Math.round(rate))}/s`);
  if (total !== undefined) parts.push(`ETA ${rate > 0 ? formatDuration((total - bytes) / rate) : "--"}`);
  return parts.join("  ");
}

export class ProgressReporter {
  private readonly started: number;
  private lastDraw = -Infinity;
  private lastTenth = -1;
  private drawn = false;

  constructor(
    private readonly sink: ProgressSink,
    private readonly label: string,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.started = now();
  }

  update(bytes: number, total: number | undefined): void {
    const t = this.now();
    const elapsed = (t - this.started) / 1000;
    if (this.sink.isTTY) {
      // Redraw at most ten times a second.
      if (t - this.lastDraw < 100 && bytes !== total) return;
      this.lastDraw = t;
      this.sink.write(`\r\x1b[2K${progressLine(this.label, bytes, total, elapsed)}`);
      this.drawn = true;
      return;
    }
    const tenth = total ? Math.floor((bytes * 10) / total) : Math.floor(bytes / (64 * 1024 * 1024));
    if (tenth === this.lastTenth) return;
    this.lastTenth = tenth;
    this.sink.write(`${progressLine(this.label, bytes, total, elapsed)}\n`);
  }

  /** Ends the redrawn line. */
  done(): void {
    if (this.sink.isTTY && this.drawn) this.sink.write("\n");
  }
}

/**
 * Folds the progress of a kernel + initramfs download into one figure: bytes
 * of both, and a total once both totals are known.
 */
export function pairProgress(report: (bytes: number, total: number | undefined) => void): (file: string, p: { bytes: number; total: number | undefined }) => void {
  const perFile = new Map<string, { bytes: number; total: number | undefined }>();
  return (file, p) => {
    perFile.set(file, p);
    const all = [...perFile.values()];
    const total = all.length === 2 && all.every((x) => x.total !== undefined) ? all.reduce((n, x) => n + x.total!, 0) : undefined;
    report(all.reduce((n, x) => n + x.bytes, 0), total);
  };
}
