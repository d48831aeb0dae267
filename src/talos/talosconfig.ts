/**
 * The admin talosconfig, as `talosctl gen config` writes it (Talos
 * pkg/machinery/client/config NewConfig + generate/talosconfig.go): one
 * context named after the cluster, the OS CA, and an admin client
 * certificate — Ed25519 like the OS CA, subject O=os:admin, key usage
 * digitalSignature, extended key usage exactly clientAuth, one year.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { ADMIN_CERT_VALIDITY_MS, issueCertificate, type CertAndKey } from "./pki.js";
import { goYamlScalar } from "./secrets-yaml.js";
import type { SecretsBundle } from "./secrets.js";

/** Talos role.Admin. */
export const TALOS_ADMIN_ROLE = "os:admin";

/** A Talos API client certificate signed by the OS CA (secrets.NewAdminCertificateAndKey). */
export async function makeTalosClientCertificate(
  osCa: CertAndKey,
  opts: { roles?: string[]; now?: Date; validityMs?: number } = {},
): Promise<CertAndKey> {
  const now = opts.now ?? new Date();
  return issueCertificate(osCa, {
    subject: { organizations: opts.roles ?? [TALOS_ADMIN_ROLE] },
    notBefore: now,
    notAfter: new Date(now.getTime() + (opts.validityMs ?? ADMIN_CERT_VALIDITY_MS)),
    keyUsage: x509.KeyUsageFlags.digitalSignature,
    // Talos's apid refuses client certificates whose EKU is anything but clientAuth.
    extendedKeyUsage: [x509.ExtendedKeyUsage.clientAuth],
  });
}

const b64 = (pem: string) => Buffer.from(pem, "latin1").toString("base64");

function yamlList(items: string[], indent: string): string {
  if (items.length === 0) return " []\n";
  return "\n" + items.map((i) => `${indent}- ${goYamlScalar(i)}\n`).join("");
}

/**
 * talosconfig YAML, laid out as go-yaml marshals Talos's client Config:
 * `context`, then `contexts.<name>` with endpoints, nodes (only when given),
 * ca, crt, key.
 */
export async function makeTalosconfig(opts: {
  clusterName: string;
  endpoints: string[];
  nodes?: string[];
  secrets: SecretsBundle;
  now?: Date;
}): Promise<string> {
  const client = await makeTalosClientCertificate(opts.secrets.certs.os, { now: opts.now });
  const name = goYamlScalar(opts.clusterName);
  const nodes = opts.nodes?.length ? `        nodes:${yamlList(opts.nodes, "            ")}` : "";
  return (
    `context: ${name}\n` +
    "contexts:\n" +
    `    ${name}:\n` +
    `        endpoints:${yamlList(opts.endpoints, "            ")}` +
    nodes +
    `        ca: ${b64(opts.secrets.certs.os.crt)}\n` +
    `        crt: ${b64(client.crt)}\n` +
    `        key: ${b64(client.key)}\n`
  );
}
