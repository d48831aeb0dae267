/**
 * An admin kubeconfig made offline from the cluster's Kubernetes CA, the one
 * `talosctl kubeconfig` fetches (Talos pkg/kubeconfig GenerateAdmin): cluster
 * `<name>`, user and context `admin@<name>`, namespace `default`; client
 * certificate CN=admin, O=system:masters, key usage digitalSignature +
 * keyEncipherment, extended key usage clientAuth, valid from ten seconds ago
 * (clock skew) for one year, key of the CA's type (ECDSA P-256).
 * Laid out as client-go's clientcmd.Write (sigs.k8s.io/yaml: sorted keys,
 * two-space indentation).
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { ADMIN_CERT_VALIDITY_MS, issueCertificate } from "./pki.js";
import { goYamlScalar } from "./secrets-yaml.js";
import type { SecretsBundle } from "./secrets.js";

/** constants.KubernetesAdminCertCommonName / KubernetesAdminCertOrganization. */
export const KUBE_ADMIN_COMMON_NAME = "admin";
export const KUBE_ADMIN_ORGANIZATION = "system:masters";
const ALLOWED_TIME_SKEW_MS = 10_000;

const b64 = (pem: string) => Buffer.from(pem, "latin1").toString("base64");

export async function makeAdminKubeconfig(opts: {
  clusterName: string;
  /** The Kubernetes API endpoint URL, e.g. `https://10.0.0.10:6443`; written as given. */
  endpoint: string;
  secrets: SecretsBundle;
  now?: Date;
}): Promise<string> {
  if (!URL.canParse(opts.endpoint)) throw new Error(`invalid Kubernetes endpoint URL "${opts.endpoint}"`);
  const now = opts.now ?? new Date();
  const client = await issueCertificate(opts.secrets.certs.k8s, {
    subject: { organizations: [KUBE_ADMIN_ORGANIZATION], commonName: KUBE_ADMIN_COMMON_NAME },
    notBefore: new Date(now.getTime() - ALLOWED_TIME_SKEW_MS),
    notAfter: new Date(now.getTime() + ADMIN_CERT_VALIDITY_MS),
    keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    extendedKeyUsage: [x509.ExtendedKeyUsage.clientAuth],
  });
  const s = goYamlScalar;
  const cluster = s(opts.clusterName);
  const user = s(`admin@${opts.clusterName}`);
  return (
    "apiVersion: v1\n" +
    "clusters:\n" +
    "- cluster:\n" +
    `    certificate-authority-data: ${b64(opts.secrets.certs.k8s.crt)}\n` +
    `    server: ${s(opts.endpoint)}\n` +
    `  name: ${cluster}\n` +
    "contexts:\n" +
    "- context:\n" +
    `    cluster: ${cluster}\n` +
    "    namespace: default\n" +
    `    user: ${user}\n` +
    `  name: ${user}\n` +
    `current-context: ${user}\n` +
    "kind: Config\n" +
    "users:\n" +
    `- name: ${user}\n` +
    "  user:\n" +
    `    client-certificate-data: ${b64(client.crt)}\n` +
    `    client-key-data: ${b64(client.key)}\n`
  );
}
