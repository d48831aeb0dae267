/**
 * The YAML bytes Go's `go.yaml.in/yaml/v4` `Marshal` writes, for the node
 * shapes a schematic has (block mappings and sequences of strings, integers
 * and booleans). The Image Factory's schematic ID is the sha256 of exactly
 * these bytes (image-factory `pkg/schematic/schematic.go`: `Marshal` →
 * `yaml.Marshal`, `ID` → `sha256.Sum256`), so byte-exactness is the point:
 * indentation 4, sequences indented under their key (`WithV3Defaults`), no
 * line folding (`WithLineWidth(-1)`), the legacy quoting rules.
 *
 * Ported from go-yaml v4's `internal/libyaml`: `representer.go` (`stringv`),
 * `desolver.go`, `resolver.go` (`resolve`), `emitter.go` (`analyzeScalar`,
 * `selectScalarStyle`, the scalar writers, `increaseIndentCompact`,
 * `writeIndent`). Only block context is needed: a schematic never holds a
 * flow collection except the empty mapping `{}`.
 */

export type YamlNode =
  | { kind: "map"; entries: Array<[string, YamlNode]> }
  | { kind: "seq"; items: YamlNode[] }
  | { kind: "str"; value: string }
  | { kind: "int"; value: number }
  | { kind: "bool"; value: boolean };

const BEST_INDENT = 4;

/** The strings go-yaml cannot emit as text (invalid UTF-16 → Go would switch to !!binary). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export class CanonicalYamlError extends Error {}

// ---- character classes (scanner.go), on code points -----------------------

const isLineBreak = (c: number): boolean => c === 0x0a || c === 0x0d || c === 0x85 || c === 0x2028 || c === 0x2029;
const isBlank = (c: number | undefined): boolean => c === 0x20 || c === 0x09;
const isPrintable = (c: number): boolean =>
  c === 0x0a || (c >= 0x20 && c <= 0x7e) || (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd && c !== 0xfeff);
/** Go's unicode.IsSpace. */
const isUnicodeSpace = (c: number): boolean =>
  (c >= 0x09 && c <= 0x0d) ||
  c === 0x20 ||
  c === 0x85 ||
  c === 0xa0 ||
  c === 0x1680 ||
  (c >= 0x2000 && c <= 0x200a) ||
  c === 0x2028 ||
  c === 0x2029 ||
  c === 0x202f ||
  c === 0x205f ||
  c === 0x3000;

// ---- resolver.go: what a plain scalar would be read back as ---------------

const RESOLVE_MAP = new Set([
  "true", "True", "TRUE", "false", "False", "FALSE",
  "", "~", "null", "Null", "NULL",
  ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
  "-0", "-0.0", "<<",
]);
const YAML_STYLE_FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** Go's strconv.ParseInt(s, 0, 64) || ParseUint(s, 0, 64) succeeding. */
function goParsesAsInteger(s: string): boolean {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return false;
  const sign = m[1]!;
  let digits = m[2]!;
  let value: bigint;
  if (/^0[oO]/.test(digits)) value = BigInt(`0o${digits.slice(2)}`);
  else if (/^0[0-7]+$/.test(digits)) value = BigInt(`0o${digits.slice(1)}`);
  else {
    if (/^0[xXbB]/.test(digits)) digits = digits.slice(0, 2).toLowerCase() + digits.slice(2);
    value = BigInt(digits);
  }
  if (sign === "-") return value <= INT64_MAX + 1n;
  if (value <= INT64_MAX) return true;
  return sign === "" && value <= UINT64_MAX;
}

function daysIn(month: number, year: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** resolver.go parseTimestamp: Go time.Parse with the four allowed layouts. */
function isGoTimestamp(s: string): boolean {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:([Tt ])(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?)?$/.exec(s);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(month, year)) return false;
  if (m[4] === undefined) return true;
  // The space-separated layout has no zone; the T/t layouts require one.
  if ((m[4] === " ") !== (m[8] === undefined)) return false;
  if (Number(m[5]) > 23 || Number(m[6]) > 59 || Number(m[7]) > 59) return false;
  if (m[8] && m[8] !== "Z" && (Number(m[8].slice(1, 3)) > 24 || Number(m[8].slice(4, 6)) > 60)) return false;
  return true;
}

/** True when go-yaml would read the plain scalar back as something other than a string. */
export function resolvesToNonString(s: string): boolean {
  if (RESOLVE_MAP.has(s)) return true;
  const first = s[0]!;
  if (first === ".") return /^\.[0-9]+(?:[eE][-+]?[0-9]+)?$/.test(s) && Number.isFinite(Number(s));
  if (!/[0-9+-]/.test(first)) return false;
  if (/^[0-9]/.test(first) && /^\d{4}-/.test(s) && isGoTimestamp(s)) return true;
  const plain = s.replaceAll("_", "");
  if (goParsesAsInteger(plain)) return true;
  return YAML_STYLE_FLOAT.test(plain) && Number.isFinite(Number(plain));
}

// ---- representer.go + desolver.go: the requested style --------------------

type Style = "plain" | "single" | "double" | "literal";

const BASE60_FLOAT = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;
const OLD_BOOLS = new Set(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF"]);

function requestedStyle(s: string): Style {
  let style: Style;
  if (s.includes("\n")) {
    const literal = s.length >= 2 && [...s].some((ch) => !isUnicodeSpace(ch.codePointAt(0)!));
    style = literal ? "literal" : "double";
  } else if (BASE60_FLOAT.test(s) || OLD_BOOLS.has(s) || s === "<<") {
    style = "single";
  } else {
    style = "plain";
  }
  // The desolver: a string that would read back as another type gets quoted
  // (QuoteLegacy: double quotes).
  if (style === "plain" && resolvesToNonString(s)) style = "double";
  return style;
}

// ---- emitter.go analyzeScalar (block context only) ------------------------

interface ScalarAnalysis {
  multiline: boolean;
  blockPlainAllowed: boolean;
  singleQuotedAllowed: boolean;
  blockAllowed: boolean;
}

function analyzeScalar(s: string): ScalarAnalysis {
  if (s.length === 0) return { multiline: false, blockPlainAllowed: true, singleQuotedAllowed: true, blockAllowed: false };
  const cps = [...s].map((ch) => ch.codePointAt(0)!);
  let blockIndicators = s.startsWith("---") || s.startsWith("...");
  let lineBreaks = false;
  let special = false;
  let tabs = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let precededByWhitespace = true;
  let previousSpace = false;
  let previousBreak = false;
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    const followedByWhitespace = i + 1 >= cps.length || isBlank(cps[i + 1]);
    const ch = String.fromCodePoint(c);
    if (i === 0) {
      if ("#,[]{}&*!|>'\"%@`".includes(ch)) blockIndicators = true;
      else if ((ch === "?" || ch === ":" || ch === "-") && followedByWhitespace) blockIndicators = true;
    } else if (ch === ":" && followedByWhitespace) {
      blockIndicators = true;
    } else if (ch === "#" && precededByWhitespace) {
      blockIndicators = true;
    }
    if (c === 0x09) tabs = true;
    else if (!isPrintable(c)) special = true;
    if (c === 0x20) {
      if (i === 0) leadingSpace = true;
      if (i === cps.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (isLineBreak(c)) {
      lineBreaks = true;
      if (i === 0) leadingBreak = true;
      if (i === cps.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = isBlank(c) || isLineBreak(c) || c === 0;
  }
  const a: ScalarAnalysis = { multiline: lineBreaks, blockPlainAllowed: true, singleQuotedAllowed: true, blockAllowed: true };
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) a.blockPlainAllowed = false;
  if (trailingSpace) a.blockAllowed = false;
  if (breakSpace) a.blockPlainAllowed = a.singleQuotedAllowed = false;
  if (spaceBreak || tabs || special) a.blockPlainAllowed = a.singleQuotedAllowed = false;
  if (spaceBreak || special) a.blockAllowed = false;
  if (lineBreaks || blockIndicators) a.blockPlainAllowed = false;
  return a;
}

function selectStyle(s: string): Style {
  let style = requestedStyle(s);
  const a = analyzeScalar(s);
  if (style === "plain" && !a.blockPlainAllowed) style = "single";
  if (style === "single" && !a.singleQuotedAllowed) style = "double";
  if (style === "literal" && !a.blockAllowed) style = "double";
  return style;
}

// ---- the writer ------------------------------------------------------------

/** Who asked for the node: decides how far the emitter indents (increaseIndentCompact). */
type Parent = "root" | "seq-item" | "map";

class Emitter {
  out = "";
  private column = 0;
  private indent = -1;
  private readonly indents: number[] = [];
  private whitespace = true;
  private indention = true;

  private put(text: string): void {
    this.out += text;
    this.column += [...text].length;
  }

  private putLineBreak(): void {
    this.out += "\n";
    this.column = 0;
    this.indention = true;
  }

  private increaseIndent(parent: Parent): void {
    this.indents.push(this.indent);
    if (this.indent < 0) this.indent = 0;
    else if (parent === "seq-item") this.indent += 2;
    else this.indent = BEST_INDENT * Math.floor((this.indent + BEST_INDENT) / BEST_INDENT);
  }

  private popIndent(): void {
    this.indent = this.indents.pop()!;
  }

  writeIndent(): void {
    const indent = Math.max(this.indent, 0);
    if (!this.indention || this.column > indent || (this.column === indent && !this.whitespace)) this.putLineBreak();
    while (this.column < indent) this.put(" ");
    this.whitespace = true;
  }

  writeIndicator(indicator: string, needWhitespace: boolean, isWhitespace: boolean, isIndention: boolean): void {
    if (needWhitespace && !this.whitespace) this.put(" ");
    this.put(indicator);
    this.whitespace = isWhitespace;
    this.indention = this.indention && isIndention;
  }

  node(n: YamlNode, parent: Parent): void {
    if (n.kind === "map") return this.mapping(n.entries, parent);
    if (n.kind === "seq") return this.sequence(n.items, parent);
    if (n.kind === "int") return this.scalar(String(n.value), "plain", parent);
    if (n.kind === "bool") return this.scalar(n.value ? "true" : "false", "plain", parent);
    return this.scalar(n.value, selectStyle(n.value), parent);
  }

  private mapping(entries: Array<[string, YamlNode]>, parent: Parent): void {
    if (entries.length === 0) {
      // checkEmptyMapping: an empty mapping is written in flow style.
      this.writeIndicator("{", true, true, false);
      this.writeIndicator("}", false, false, false);
      return;
    }
    this.increaseIndent(parent);
    for (const [key, value] of entries) {
      this.writeIndent();
      this.scalar(key, selectStyle(key), "map");
      this.writeIndicator(":", false, false, false);
      this.node(value, "map");
    }
    this.popIndent();
  }

  private sequence(items: YamlNode[], parent: Parent): void {
    if (items.length === 0) {
      this.writeIndicator("[", true, true, false);
      this.writeIndicator("]", false, false, false);
      return;
    }
    this.increaseIndent(parent);
    for (const item of items) {
      this.writeIndent();
      this.writeIndicator("-", true, false, true);
      this.node(item, "seq-item");
    }
    this.popIndent();
  }

  private scalar(value: string, style: Style, parent: Parent): void {
    this.increaseIndent(parent);
    if (style === "plain") this.plain(value);
    else if (style === "single") this.singleQuoted(value);
    else if (style === "double") this.doubleQuoted(value);
    else this.literal(value);
    this.popIndent();
  }

  private plain(value: string): void {
    if (value.length > 0 && !this.whitespace) this.put(" ");
    this.put(value);
    if (value.length > 0) this.whitespace = false;
    this.indention = false;
  }

  private singleQuoted(value: string): void {
    this.writeIndicator("'", true, false, false);
    // Only single-line values reach here (multi-line ones are literal or double-quoted).
    this.put(value.replaceAll("'", "''"));
    this.writeIndicator("'", false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  private doubleQuoted(value: string): void {
    this.writeIndicator('"', true, false, false);
    // go-yaml's isBOM looks at the string's first bytes whatever the
    // position, so a string that starts with U+FEFF is escaped throughout.
    const escapeAll = value.startsWith("\uFEFF");
    let text = "";
    for (const ch of value) {
      const c = ch.codePointAt(0)!;
      if (escapeAll || !isPrintable(c) || isLineBreak(c) || ch === '"' || ch === "\\") text += escape(c);
      else text += ch;
    }
    this.put(text);
    this.writeIndicator('"', false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  private literal(value: string): void {
    this.writeIndicator("|", true, false, false);
    // writeBlockScalarHints: an indentation indicator when the text starts
    // with a space; chomping from the trailing line breaks.
    if (value.startsWith(" ")) this.writeIndicator(String(BEST_INDENT), false, false, false);
    const cps = [...value].map((ch) => ch.codePointAt(0)!);
    const last = cps[cps.length - 1]!;
    let chomp = "";
    if (!isLineBreak(last)) chomp = "-";
    else if (cps.length === 1 || isLineBreak(cps[cps.length - 2]!)) chomp = "+";
    if (chomp) this.writeIndicator(chomp, false, false, false);
    this.putLineBreak();
    this.whitespace = true;
    let breaks = true;
    for (const c of cps) {
      if (c === 0x0a) {
        this.putLineBreak();
        breaks = true;
      } else {
        // Other line breaks (U+2028/2029) are copied raw by go-yaml; we never
        // get here with them (see canonicalYaml's guard).
        if (breaks) this.writeIndent();
        this.put(String.fromCodePoint(c));
        this.indention = false;
        breaks = false;
      }
    }
  }
}

function escape(c: number): string {
  const named: Record<number, string> = {
    0x00: "0", 0x07: "a", 0x08: "b", 0x09: "t", 0x0a: "n", 0x0b: "v", 0x0c: "f", 0x0d: "r", 0x1b: "e",
    0x22: '"', 0x5c: "\\", 0x85: "N", 0xa0: "_", 0x2028: "L", 0x2029: "P",
  };
  const n = named[c];
  if (n !== undefined) return `\\${n}`;
  if (c <= 0xff) return `\\x${c.toString(16).toUpperCase().padStart(2, "0")}`;
  if (c <= 0xffff) return `\\u${c.toString(16).toUpperCase().padStart(4, "0")}`;
  return `\\U${c.toString(16).toUpperCase().padStart(8, "0")}`;
}

function checkStrings(n: YamlNode): void {
  if (n.kind === "map") n.entries.forEach(([k, v]) => (checkStrings({ kind: "str", value: k }), checkStrings(v)));
  else if (n.kind === "seq") n.items.forEach(checkStrings);
  else if (n.kind === "str") {
    if (LONE_SURROGATE.test(n.value)) throw new CanonicalYamlError("a string is not valid Unicode (lone surrogate)");
    // go-yaml copies U+2028/U+2029 raw into quoted and literal scalars and
    // then re-indents in ways we do not replicate: refuse rather than
    // compute a wrong ID (double-quoted strings escape them, and are exact).
    if (/[\u2028\u2029]/.test(n.value) && selectStyle(n.value) !== "double") {
      throw new CanonicalYamlError("a string contains U+2028/U+2029 outside double quotes; its canonical form is not reproduced here");
    }
  }
}

/** One YAML document, byte for byte as go-yaml v4 `Marshal` writes it. */
export function canonicalYaml(root: YamlNode): string {
  checkStrings(root);
  const e = new Emitter();
  e.node(root, "root");
  // emitDocumentEnd. No "..." after an open-ended `|+` block: the
  // serializer clears OpenEnded before the stream end (serializer.go Finish).
  e.writeIndent();
  return e.out;
}
