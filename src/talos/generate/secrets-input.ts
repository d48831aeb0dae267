/**
 * What config generation needs from a secrets bundle, as PEM text and plain
 * strings. The secrets module (src/talos/secrets.ts) owns the bundle and its
 * file format; this narrow type keeps the generator independent of it.
 */
import type { SecretsBundle } from "../secrets.js";

export interface PemCertAndKey {
  /** PEM text of the certificate. */
  readonly crt: string;
  /** PEM text of the private key, Talos's label kept (`EC PRIVATE KEY`, `ED25519 PRIVATE KEY`). */
  readonly key: string;
}

export interface SecretsInput {
  readonly clusterId: string;
  readonly clusterSecret: string;
  /** Kubernetes bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}`. */
  readonly bootstrapToken: string;
  /** trustd token (machine.token), same format. */
  readonly trustdToken: string;
  /** etcd-at-rest key of bundles for Talos ≥ 1.3. */
  readonly secretboxEncryptionSecret?: string;
  /** etcd-at-rest key of bundles made before Talos 1.3. */
  readonly aescbcEncryptionSecret?: string;
  readonly os: PemCertAndKey;
  readonly etcd: PemCertAndKey;
  readonly k8s: PemCertAndKey;
  readonly k8sAggregator: PemCertAndKey;
  /** PEM text of the service-account signing key (RSA or EC). */
  readonly k8sServiceAccountKey: string;
}

/** The generator's view of a secrets bundle (generated or read from a talosctl secrets.yaml). */
export function secretsInputFromBundle(b: SecretsBundle): SecretsInput {
  return {
    clusterId: b.cluster.id,
    clusterSecret: b.cluster.secret,
    bootstrapToken: b.secrets.bootstrapToken,
    trustdToken: b.trustdInfo.token,
    ...(b.secrets.secretboxEncryptionSecret ? { secretboxEncryptionSecret: b.secrets.secretboxEncryptionSecret } : {}),
    ...(b.secrets.aescbcEncryptionSecret ? { aescbcEncryptionSecret: b.secrets.aescbcEncryptionSecret } : {}),
    os: { crt: b.certs.os.crt, key: b.certs.os.key },
    etcd: { crt: b.certs.etcd.crt, key: b.certs.etcd.key },
    k8s: { crt: b.certs.k8s.crt, key: b.certs.k8s.key },
    k8sAggregator: { crt: b.certs.k8sAggregator.crt, key: b.certs.k8sAggregator.key },
    k8sServiceAccountKey: b.certs.k8sServiceAccount.key,
  };
}
