/**
 * Value formats Talos and Kubernetes insist on: tokens, endpoints, addresses,
 * DNS names, labels, base64 keys, certificates and keys. Each check reports
 * what is wrong and what is expected, never the (possibly secret) value.
 */
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { describeKey, parsePrivateKey } from "../pki.js";
import { TOKEN_PATTERN } from "../secrets.js";
import { type Report } from "./report.js";

export function checkToken(r: Report, path: string, value: unknown, what: string): void {
  if (typeof value !== "string" || value === "") {
    r.error(path, `required: the ${what} (6 + 16 lowercase letters or digits, "abcdef.0123456789abcdef")`);
  } else if (!TOKEN_PATTERN.test(value)) {
    r.error(path, `the ${what} must be 6 and 16 lowercase letters or digits joined by a dot (abcdef.0123456789abcdef); this one has ${value.length} characters`);
  }
}

/** siderolabs/net ValidateEndpointURI plus a scheme check. Returns the problem, or undefined. */
export function endpointProblem(value: string, schemes: readonly string[]): string | undefined {
  // "host:6443" parses as a URL with the scheme "host": look for "://" first.
  if (!value.includes("://")) return `"${value}" is not a URL: it needs a scheme, e.g. ${schemes[0]}://${value}`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a valid URL: check the host name and that the port is between 1 and 65535`;
  }
  const scheme = url.protocol.replace(/:$/, "");
  if (!schemes.includes(scheme)) return `"${value}" must start with ${schemes.map((s) => `${s}://`).join(" or ")}`;
  if (url.hostname === "") return `"${value}" has no host name`;
  // An unbracketed IPv6 literal makes WHATWG URL parsing fail above, or leaves colons in the host.
  if (url.port !== "") {
    const port = Number(url.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return `"${value}": the port must be between 1 and 65535`;
  }
  return undefined;
}

export function checkEndpoint(r: Report, path: string, value: unknown, schemes: readonly string[] = ["https", "http"]): void {
  if (typeof value !== "string" || value === "") {
    r.error(path, `required: a ${schemes[0]}:// URL`);
    return;
  }
  const problem = endpointProblem(value, schemes);
  if (problem) r.error(path, problem);
}

export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

/** `10.0.0.0/8`, `fd00::/64`: an address and a prefix length valid for its family. */
export function isCidr(value: string): boolean {
  const slash = value.lastIndexOf("/");
  if (slash < 0) return false;
  const family = isIP(value.slice(0, slash));
  const bits = value.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

export function isIpOrCidr(value: string): boolean {
  return value.includes("/") ? isCidr(value) : isIpAddress(value);
}

/** Talos's ParseSubnetOrAddress filters: a CIDR or address, optionally negated with `!`. */
export function isSubnetFilter(value: string): boolean {
  return isIpOrCidr(value.replace(/^!/, ""));
}

const DNS_NAME = /^([a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})(\.[a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})*[._]?$/;

/** Talos's isValidDNSName (cluster DNS domain). */
export function isDnsName(value: string): boolean {
  return value !== "" && value.length - (value.match(/\./g)?.length ?? 0) <= 255 && DNS_NAME.test(value);
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export function isDns1123Subdomain(value: string): boolean {
  return value.length <= 253 && DNS1123_SUBDOMAIN.test(value);
}

/** Kubernetes label keys: `[prefix/]name` (labels.ValidateQualifiedName). */
export function labelKeyProblem(key: string): string | undefined {
  const parts = key.split("/");
  if (parts.length > 2) return `label key "${key}" has more than one "/"`;
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length === 2 && !isDns1123Subdomain(parts[0]!)) return `label key prefix "${parts[0]}" must be a DNS subdomain (lowercase, dots)`;
  if (name === "") return `label key "${key}" has an empty name`;
  if (name.length > 63) return `label key "${key}": the name is longer than 63 characters`;
  if (!QUALIFIED_NAME.test(name)) return `label key "${key}": the name must be letters, digits, "-", "_" or ".", starting and ending with a letter or digit`;
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (value.length > 63) return `label value "${value}" is longer than 63 characters`;
  if (value !== "" && !QUALIFIED_NAME.test(value)) return `label value "${value}" must be letters, digits, "-", "_" or ".", starting and ending with a letter or digit`;
  return undefined;
}

const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/** labels.ValidateTaints: `key: effect` or `key: value:effect`. */
export function taintProblem(key: string, value: string): string | undefined {
  const keyProblem = labelKeyProblem(key);
  if (keyProblem) return keyProblem;
  const colon = value.indexOf(":");
  const effect = colon < 0 ? value : value.slice(colon + 1);
  if (!TAINT_EFFECTS.includes(effect)) return `taint "${key}": the effect must be one of ${TAINT_EFFECTS.join(", ")} ("value:Effect" or "Effect"), not "${effect}"`;
  return colon < 0 ? undefined : labelValueProblem(value.slice(0, colon));
}

export function checkLabels(r: Report, path: string, labels: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(labels)) {
    const problem = labelKeyProblem(k) ?? (typeof v === "string" ? labelValueProblem(v) : `label "${k}" must have a string value`);
    if (problem) r.error(`${path}.${k}`, problem);
  }
}

export function checkTaints(r: Report, path: string, taints: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(taints)) {
    const problem = typeof v === "string" ? taintProblem(k, v) : `taint "${k}" must have a string value such as NoSchedule`;
    if (problem) r.error(`${path}.${k}`, problem);
  }
}

/** Strict standard base64 (Go's base64.StdEncoding), or undefined. */
export function decodeStdBase64(value: string): Buffer | undefined {
  if (value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return undefined;
  return Buffer.from(value, "base64");
}

/** A base64 key of an exact size (cluster secret, secretbox key). */
export function checkBase64Key(r: Report, path: string, value: unknown, bytes: number, what: string): void {
  if (typeof value !== "string" || value === "") {
    r.error(path, `required: the ${what} (${bytes} random bytes, standard base64)`);
    return;
  }
  const decoded = decodeStdBase64(value);
  if (!decoded) r.error(path, `the ${what} must be standard base64 (${bytes} random bytes, e.g. from "openssl rand -base64 ${bytes}")`);
  else if (decoded.length !== bytes) r.error(path, `the ${what} decodes to ${decoded.length} bytes; it must be ${bytes} (e.g. "openssl rand -base64 ${bytes}")`);
}

export interface PemPair {
  /** PEM text (already decoded from the v1alpha1 base64 form). */
  readonly cert?: string;
  readonly key?: string;
  /** Where each part lives, for messages. */
  readonly certPath: string;
  readonly keyPath: string;
}

/**
 * A CA certificate and (optionally) its key: the certificate parses, is a CA
 * and has not expired; the key parses and is the certificate's key.
 */
export function checkCaPair(r: Report, pair: PemPair, now: Date): void {
  let cert: X509Certificate | undefined;
  if (pair.cert !== undefined) {
    try {
      cert = new X509Certificate(pair.cert);
    } catch (err) {
      r.error(pair.certPath, `not a PEM certificate (${(err as Error).message})`);
    }
  }
  if (cert) {
    if (!cert.ca) r.error(pair.certPath, "not a CA certificate (basicConstraints CA:TRUE is missing)");
    if (new Date(cert.validTo).getTime() < now.getTime()) r.error(pair.certPath, `the certificate expired on ${new Date(cert.validTo).toISOString()}`);
  }
  if (pair.key === undefined) return;
  let key;
  try {
    key = parsePrivateKey(pair.key);
  } catch (err) {
    r.error(pair.keyPath, `not a usable private key: ${(err as Error).message}`);
    return;
  }
  if (cert && !cert.checkPrivateKey(key)) {
    r.error(pair.keyPath, `the key (${describeKey(key)}) does not belong to the certificate in ${pair.certPath}`);
  }
}

/** A private key on its own (the service-account key): parses, RSA or ECDSA. */
export function checkSigningKey(r: Report, path: string, pem: string): void {
  try {
    const key = parsePrivateKey(pem);
    if (key.asymmetricKeyType !== "rsa" && key.asymmetricKeyType !== "ec") {
      r.error(path, `the key is ${describeKey(key)}; kube-apiserver signs service-account tokens with RSA or ECDSA keys only`);
    }
  } catch (err) {
    r.error(path, `not a usable private key: ${(err as Error).message}`);
  }
}

/** A PEM certificate given as data: parses as a certificate. */
export function checkCertificate(r: Report, path: string, pem: string): void {
  try {
    new X509Certificate(pem);
  } catch (err) {
    r.error(path, `not a PEM certificate (${(err as Error).message})`);
  }
}

/** v1alpha1 `crt`/`key` fields hold base64 of the PEM text. */
export function decodeEmbeddedPem(r: Report, path: string, value: unknown): string | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  const decoded = decodeStdBase64(value.replace(/\s+/g, ""));
  if (!decoded) {
    r.error(path, "must be base64 of PEM text (as talosctl writes it)");
    return undefined;
  }
  return decoded.toString("latin1");
}
