/**
 * The Talos PKI, made the way Talos's generator makes it (siderolabs/crypto
 * x509 + pkg/machinery/config/generate/secrets), so a bundle we make is one
 * talosctl could have made and the other way round:
 *
 * - CAs: self-signed, random 128-bit serial, random 20-byte subject key id,
 *   key usage digitalSignature+keyCertSign (critical), extended key usage
 *   serverAuth+clientAuth, basicConstraints CA:TRUE (critical), in that
 *   extension order; subject = organizations only (a common name is dropped,
 *   which is why the aggregator CA's subject is empty).
 * - Leaf certificates: key of the CA's type, no basicConstraints, authority
 *   key id = the CA's subject key id.
 * - PEM labels as Talos writes them: `ED25519 PRIVATE KEY` (PKCS#8 inside),
 *   `EC PRIVATE KEY` (SEC1), `RSA PRIVATE KEY` (PKCS#1), `CERTIFICATE`.
 *
 * Key generation uses node:crypto's async functions so an RSA-4096 key (up to
 * seconds) is made on the thread pool, not on the event loop.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair as generateKeyPairCb,
  randomBytes,
  webcrypto,
  type KeyObject,
} from "node:crypto";
import { promisify } from "node:util";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const generateKeyPair = promisify(generateKeyPairCb);

export const PEM_CERTIFICATE = "CERTIFICATE";
export const PEM_ED25519_PRIVATE = "ED25519 PRIVATE KEY";
export const PEM_EC_PRIVATE = "EC PRIVATE KEY";
export const PEM_RSA_PRIVATE = "RSA PRIVATE KEY";
export const PEM_PRIVATE = "PRIVATE KEY";

/** Talos's CAValidityTime: 87600 h (ten years of 365 days). */
export const CA_VALIDITY_MS = 87_600 * 3600_000;
/** Talos's TalosAPIDefaultCertificateValidityDuration and KubernetesAdminCertDefaultLifetime: 365 days. */
export const ADMIN_CERT_VALIDITY_MS = 365 * 24 * 3600_000;

const OID_ORGANIZATION = "2.5.4.10";
const OID_COMMON_NAME = "2.5.4.3";

/** A certificate and its private key, both PEM text (Talos's PEMEncodedCertificateAndKey). */
export interface CertAndKey {
  crt: string;
  key: string;
}

export type KeyKind = "ed25519" | "ecdsa-p256" | "rsa";

export class PkiError extends Error {}

// ---------------------------------------------------------------- PEM

/** Go's pem.EncodeToMemory: 64-column base64 lines, a trailing newline. */
export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}${lines.length ? "\n" : ""}-----END ${label}-----\n`;
}

/** The first PEM block in `text` (as Go's pem.Decode: text before it is skipped, whitespace in the body ignored). */
export function decodePem(text: string): { label: string; der: Buffer } {
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n/.exec(text);
  if (!begin) throw new PkiError("no PEM block found");
  const label = begin[1] ?? "";
  const start = begin.index + begin[0].length;
  const end = text.indexOf(`-----END ${label}-----`, start);
  if (end < 0) throw new PkiError(`PEM block "${label}" has no END line`);
  const body = text.slice(start, end).replace(/\s+/g, "");
  if (body.length === 0 || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(body)) {
    throw new PkiError(`PEM block "${label}" has invalid base64`);
  }
  return { label, der: Buffer.from(body, "base64") };
}

// ---------------------------------------------------------------- keys

export function keyKindOf(key: KeyObject): KeyKind | undefined {
  switch (key.asymmetricKeyType) {
    case "ed25519":
      return "ed25519";
    case "rsa":
      return "rsa";
    case "ec":
      return key.asymmetricKeyDetails?.namedCurve === "prime256v1" ? "ecdsa-p256" : undefined;
    default:
      return undefined;
  }
}

/**
 * Parses a private key by its PEM label, as siderolabs/crypto's GetKey does:
 * RSA → PKCS#1, EC → SEC1, ED25519 → PKCS#8 holding an Ed25519 key,
 * PRIVATE KEY → any PKCS#8.
 */
export function parsePrivateKey(pem: string): KeyObject {
  const { label, der } = decodePem(pem);
  try {
    switch (label) {
      case PEM_RSA_PRIVATE:
        return createPrivateKey({ key: der, format: "der", type: "pkcs1" });
      case PEM_EC_PRIVATE:
        return createPrivateKey({ key: der, format: "der", type: "sec1" });
      case PEM_ED25519_PRIVATE: {
        const key = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
        if (key.asymmetricKeyType !== "ed25519") throw new PkiError(`"${label}" block holds a ${key.asymmetricKeyType} key`);
        return key;
      }
      case PEM_PRIVATE:
        return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
      default:
        throw new PkiError(`unsupported key PEM label "${label}"`);
    }
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError(`cannot parse "${label}" block: ${(err as Error).message}`);
  }
}

/** Encodes a private key with the PEM label Talos uses for its type. */
export function encodePrivateKey(key: KeyObject): string {
  switch (key.asymmetricKeyType) {
    case "ed25519":
      return encodePem(PEM_ED25519_PRIVATE, key.export({ format: "der", type: "pkcs8" }));
    case "ec":
      return encodePem(PEM_EC_PRIVATE, key.export({ format: "der", type: "sec1" }));
    case "rsa":
      return encodePem(PEM_RSA_PRIVATE, key.export({ format: "der", type: "pkcs1" }));
    default:
      throw new PkiError(`unsupported key type ${key.asymmetricKeyType}`);
  }
}

/**
 * The same key as PKCS#8 `PRIVATE KEY`, for node:tls and other OpenSSL users,
 * which do not know Talos's `ED25519 PRIVATE KEY` label. In memory only: on
 * disk the Talos labels stay.
 */
export function toPkcs8Pem(pem: string): string {
  return encodePem(PEM_PRIVATE, parsePrivateKey(pem).export({ format: "der", type: "pkcs8" }));
}

export async function newKey(kind: KeyKind): Promise<KeyObject> {
  switch (kind) {
    case "ed25519":
      return (await generateKeyPair("ed25519")).privateKey;
    case "ecdsa-p256":
      return (await generateKeyPair("ec", { namedCurve: "P-256" })).privateKey;
    case "rsa":
      // siderolabs/crypto NewRSAKey: 4096 bits. Seconds of CPU: on the thread pool.
      return (await generateKeyPair("rsa", { modulusLength: 4096, publicExponent: 0x10001 })).privateKey;
  }
}

function webcryptoAlgorithm(kind: KeyKind): { importParams: Parameters<typeof webcrypto.subtle.importKey>[2]; signing: Algorithm } {
  switch (kind) {
    case "ed25519":
      return { importParams: { name: "Ed25519" }, signing: { name: "Ed25519" } };
    case "ecdsa-p256":
      return {
        importParams: { name: "ECDSA", namedCurve: "P-256" } as EcKeyImportParams,
        signing: { name: "ECDSA", hash: "SHA-256" } as EcdsaParams,
      };
    case "rsa":
      // siderolabs/crypto signs with SHA-512 under RSA (x509.SHA512WithRSA).
      return {
        importParams: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" } as RsaHashedImportParams,
        signing: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" } as RsaHashedImportParams,
      };
  }
}

/** The private key as a WebCrypto signing key, which @peculiar/x509 signs with. */
async function signingKeyOf(key: KeyObject, kind: KeyKind): Promise<CryptoKey> {
  const der = key.export({ format: "der", type: "pkcs8" });
  const imported = await webcrypto.subtle.importKey("pkcs8", der, webcryptoAlgorithm(kind).importParams, false, ["sign"]);
  return imported as unknown as CryptoKey;
}

/** SPKI DER of the key's public half; @peculiar/x509 takes it as is, no WebCrypto import needed. */
function spkiOf(key: KeyObject): ArrayBuffer {
  const der = createPublicKey(key).export({ format: "der", type: "spki" });
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer;
}

// ---------------------------------------------------------------- certificates

export interface SubjectSpec {
  organizations?: string[];
  commonName?: string;
}

/** Go's pkix.Name order: O before CN; several organizations share one RDN. */
function jsonName(subject: SubjectSpec): x509.JsonName {
  const name: x509.JsonName = [];
  if (subject.organizations?.length) name.push({ [OID_ORGANIZATION]: subject.organizations });
  if (subject.commonName) name.push({ [OID_COMMON_NAME]: [subject.commonName] });
  return name;
}

/** siderolabs/crypto NewSerialNumber: uniform below 2^128. */
function newSerialHex(): string {
  return randomBytes(16).toString("hex");
}

/** Go's x509 truncates times to whole seconds. */
function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

export function parseCertificate(pem: string): x509.X509Certificate {
  const { label, der } = decodePem(pem);
  if (label !== PEM_CERTIFICATE) throw new PkiError(`expected a "${PEM_CERTIFICATE}" PEM block, found "${label}"`);
  try {
    return new x509.X509Certificate(new Uint8Array(der));
  } catch (err) {
    throw new PkiError(`cannot parse certificate: ${(err as Error).message}`);
  }
}

export type CaRole = "os" | "etcd" | "k8s" | "k8sAggregator";

/** Subject and key type per CA, as in Talos's generate/secrets/ca.go. */
const CA_PROFILES: Record<CaRole, { organizations: string[]; kind: KeyKind }> = {
  os: { organizations: ["talos"], kind: "ed25519" },
  etcd: { organizations: ["etcd"], kind: "ecdsa-p256" },
  k8s: { organizations: ["kubernetes"], kind: "ecdsa-p256" },
  // Talos passes CommonName("front-proxy"), which a self-signed CA ignores: empty subject.
  k8sAggregator: { organizations: [], kind: "ecdsa-p256" },
};

/** A ten-year self-signed CA for one of Talos's PKIs. */
export async function newCertificateAuthority(role: CaRole, now: Date = new Date()): Promise<CertAndKey> {
  const profile = CA_PROFILES[role];
  const key = await newKey(profile.kind);
  const signingKey = await signingKeyOf(key, profile.kind);
  const publicKey = spkiOf(key);
  const name = jsonName({ organizations: profile.organizations });
  const notBefore = wholeSeconds(now);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: newSerialHex(),
    subject: name,
    issuer: name,
    notBefore,
    notAfter: new Date(notBefore.getTime() + CA_VALIDITY_MS),
    publicKey,
    signingKey,
    signingAlgorithm: webcryptoAlgorithm(profile.kind).signing,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      new x509.BasicConstraintsExtension(true, undefined, true),
      // siderolabs/crypto NewSubjectKeyID: random (SHA-1 of the key is not FIPS-friendly).
      new x509.SubjectKeyIdentifierExtension(randomBytes(20).toString("hex")),
    ],
  });
  return { crt: encodePem(PEM_CERTIFICATE, new Uint8Array(cert.rawData)), key: encodePrivateKey(key) };
}

export interface LeafSpec {
  subject: SubjectSpec;
  notBefore: Date;
  notAfter: Date;
  keyUsage: x509.KeyUsageFlags;
  extendedKeyUsage: string[];
}

/**
 * A certificate signed by `ca` for a fresh key of the CA's key type
 * (siderolabs/crypto NewKeyPair).
 */
export async function issueCertificate(ca: CertAndKey, spec: LeafSpec): Promise<CertAndKey> {
  const caCert = parseCertificate(ca.crt);
  const caKey = parsePrivateKey(ca.key);
  const kind = keyKindOf(caKey);
  if (!kind) throw new PkiError(`unsupported CA key type ${caKey.asymmetricKeyType}`);
  const leafKey = await newKey(kind);
  const publicKey = spkiOf(leafKey);
  const signingKey = await signingKeyOf(caKey, kind);

  const extensions: x509.Extension[] = [
    new x509.KeyUsagesExtension(spec.keyUsage, true),
    new x509.ExtendedKeyUsageExtension(spec.extendedKeyUsage, false),
  ];
  const caSkid = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  // Go copies the issuer's subject key id into the authority key id.
  if (caSkid) extensions.push(new x509.AuthorityKeyIdentifierExtension(caSkid.keyId, false));

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: newSerialHex(),
    subject: jsonName(spec.subject),
    // The issuer's name exactly as encoded in the CA certificate.
    issuer: new x509.Name(caCert.subjectName.toArrayBuffer()),
    notBefore: wholeSeconds(spec.notBefore),
    notAfter: wholeSeconds(spec.notAfter),
    publicKey,
    signingKey,
    signingAlgorithm: webcryptoAlgorithm(kind).signing,
    extensions,
  });
  return { crt: encodePem(PEM_CERTIFICATE, new Uint8Array(cert.rawData)), key: encodePrivateKey(leafKey) };
}

export function isCaCertificate(cert: x509.X509Certificate): boolean {
  return cert.getExtension(x509.BasicConstraintsExtension)?.ca === true;
}

/** True when the private key is the one whose public half the certificate carries. */
export function keyMatchesCertificate(cert: x509.X509Certificate, key: KeyObject): boolean {
  const certSpki = Buffer.from(cert.publicKey.rawData);
  const keySpki = createPublicKey(key).export({ format: "der", type: "spki" });
  return certSpki.equals(keySpki);
}

export function describeKey(key: KeyObject): string {
  const kind = keyKindOf(key);
  if (kind === "rsa") return `RSA-${key.asymmetricKeyDetails?.modulusLength ?? "?"}`;
  if (kind) return kind;
  return key.asymmetricKeyType === "ec" ? `EC ${key.asymmetricKeyDetails?.namedCurve ?? "?"}` : String(key.asymmetricKeyType);
}

