/**
 * The benchmark's one output: a Markdown table (readable on a terminal and
 * pasteable into the README), then notes. Pure formatting.
 */

/** FAILED: the measurement itself could not be made (the run exits non-zero). */
export type Verdict = "ok" | "MISSED" | "FAILED" | "";

export interface Row {
  measurement: string;
  ours: string;
  reference: string;
  /** ours ÷ reference, formatted; "—" when there is nothing to compare. */
  ratio: string;
  target: string;
  verdict: Verdict;
}

/** A row for something that could not be measured in this run. */
export function unavailable(measurement: string, why: string, target = "—"): Row {
  return { measurement, ours: `n/a (${why})`, reference: "—", ratio: "—", target, verdict: "" };
}

export function ratio(ours: number, reference: number): string {
  if (!Number.isFinite(ours) || !Number.isFinite(reference) || reference === 0) return "—";
  return `${(ours / reference).toFixed(2)}×`;
}

export function fixed(x: number, digits: number, unit: string): string {
  return Number.isFinite(x) ? `${x.toFixed(digits)} ${unit}` : "n/a";
}

const HEADER: Row = { measurement: "measurement", ours: "talos-netboot", reference: "reference", ratio: "ours ÷ ref", target: "target", verdict: "" };

export function renderTable(rows: readonly Row[]): string {
  const cells = (r: Row) => [r.measurement, r.ours, r.reference, r.ratio, r.target, r.verdict];
  const all = [HEADER, ...rows].map(cells);
  const widths = all[0]!.map((_, i) => Math.max(3, ...all.map((c) => c[i]!.length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(all[0]!), line(widths.map((w) => "-".repeat(w))), ...all.slice(1).map(line)].join("\n");
}
