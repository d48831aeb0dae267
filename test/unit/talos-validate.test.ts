/**
 * Our Talos config validator. Oracle: Talos's own generated configs
 * (reference/talos/stability) must pass — with its JSON schema of the same
 * minor — and every check fails on a config broken in exactly the way it
 * guards against (built from the goldens with our own patcher), with a
 * message naming the path.
 */
// @peculiar/x509 needs the reflect polyfill loaded first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { registerValidateCommand, runValidate, type CliIo } from "../../src/talos/cli-validate.js";
import { findContract, type Contract } from "../../src/talos/contracts/index.js";
import { documentKey, parseDocuments, stringifyDocuments, type ConfigDocument } from "../../src/talos/document.js";
import { applyPatches, parsePatch } from "../../src/talos/patch.js";
import { issueCertificate } from "../../src/talos/pki.js";
import { validateConfig, type RuntimeMode, type ValidationResult } from "../../src/talos/validate.js";
import { DEPRECATED_FIELDS } from "../../src/talos/validate/deprecated.js";
import { haveReference, referenceDir } from "../helpers/reference.js";

const haveGoldens = haveReference("talos", "stability");
const MINORS = [9, 10, 11, 12, 13, 14] as const;
type Role = "controlplane" | "worker";

function contract(minor: number): Contract {
  const c = findContract(1, minor);
  if (!c) throw new Error(`no contract 1.${minor}`);
  return c;
}

const goldenCache = new Map<string, ConfigDocument[]>();
function golden(minor: number, role: Role): ConfigDocument[] {
  const key = `${minor}/${role}`;
  if (!goldenCache.has(key)) {
    goldenCache.set(key, parseDocuments(readFileSync(referenceDir("talos", "stability", `v1.${minor}`, `base-${role}.yaml`), "utf8")));
  }
  return structuredClone(goldenCache.get(key)!);
}

const schemaCache = new Map<number, Record<string, unknown>>();
function schema(minor: number): Record<string, unknown> {
  if (!schemaCache.has(minor)) schemaCache.set(minor, JSON.parse(readFileSync(referenceDir("talos", `config.schema.v1.${minor}.json`), "utf8")));
  return schemaCache.get(minor)!;
}

function validate(minor: number, docs: ConfigDocument[], opts: { mode?: RuntimeMode; schema?: boolean; now?: Date } = {}): ValidationResult {
  return validateConfig(docs, {
    contract: contract(minor),
    ...(opts.mode ? { mode: opts.mode } : {}),
    ...(opts.schema === false ? {} : { schema: schema(minor) }),
    ...(opts.now ? { now: opts.now } : {}),
  });
}

function patched(minor: number, docs: ConfigDocument[], ...texts: string[]): ConfigDocument[] {
  return applyPatches(docs, texts.map((t) => parsePatch(t)), { contract: contract(minor) });
}

function doc(docs: ConfigDocument[], key: string): Record<string, any> {
  const found = docs.find((d) => documentKey(d) === key);
  if (!found) throw new Error(`no ${key} document`);
  return found as Record<string, any>;
}

/** base64 of PEM text, as v1alpha1 embeds certificates and keys. */
const b64 = (pem: string) => Buffer.from(pem, "latin1").toString("base64");
const pem = (base64: string) => Buffer.from(base64, "base64").toString("latin1");

type Variant = (docs: ConfigDocument[], minor: number) => ConfigDocument[];
const patches =
  (...texts: string[]): Variant =>
  (docs, minor) =>
    patched(minor, docs, ...texts);
const mutate =
  (fn: (docs: ConfigDocument[]) => void): Variant =>
  (docs) => {
    fn(docs);
    return docs;
  };

interface CheckCase {
  check: string;
  minor: number;
  role?: Role;
  mode?: RuntimeMode;
  bad: Variant;
  /** The passing case; default: the golden itself. */
  good?: Variant;
  path: string;
  message: RegExp;
  level?: "errors" | "warnings";
  /** Other error paths the broken config also (rightly) has; any other error fails the case. */
  alsoAt?: string[];
}

let leafCertPem = "";

const CASES: CheckCase[] = [
  // ------------------------------------------------------------ required fields
  { check: "the v1alpha1 document is required", minor: 14, bad: (d) => d.filter((x) => documentKey(x) !== "v1alpha1"), path: "v1alpha1", message: /no v1alpha1 document/ },
  { check: "machine is required", minor: 13, bad: patches("machine:\n  $patch: delete\n"), path: "machine", message: /required/ },
  { check: "cluster is required", minor: 12, bad: patches("cluster:\n  $patch: delete\n"), path: "cluster", message: /required/ },
  { check: "machine.type is controlplane or worker", minor: 11, bad: patches("machine:\n  type: master\n"), path: "machine.type", message: /controlplane or worker/ },
  { check: "persist: false is refused", minor: 10, bad: patches("persist: false\n"), path: "persist", message: /must be true/ },
  { check: "the endpoint is required", minor: 13, bad: patches("cluster:\n  controlPlane:\n    $patch: delete\n"), path: "cluster.controlPlane.endpoint", message: /required/ },
  { check: "1.14: KubeClusterConfig needs a cluster name", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: KubeClusterConfig\nclusterName:\n  $patch: delete\n"), path: "KubeClusterConfig.clusterName", message: /required/ },
  { check: "control planes need the etcd CA", minor: 13, bad: patches("cluster:\n  etcd:\n    $patch: delete\n"), path: "cluster.etcd.ca", message: /required on control-plane/ },
  { check: "workers carry no etcd settings", minor: 13, role: "worker", bad: mutate((d) => void (doc(d, "v1alpha1").cluster.etcd = doc(golden(13, "controlplane"), "v1alpha1").cluster.etcd)), path: "cluster.etcd", message: /only allowed on control-plane/ },
  { check: "control planes need the service-account key", minor: 12, bad: patches("cluster:\n  serviceAccount:\n    $patch: delete\n"), path: "cluster.serviceAccount.key", message: /required on control-plane/ },
  { check: "1.14 control planes need etcd encryption", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: KubeEtcdEncryptionConfig\n$patch: delete\n"), path: "KubeEtcdEncryptionConfig", message: /required on control-plane/ },
  { check: "UnattendedInstallConfig needs a disk selector", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: UnattendedInstallConfig\ninstaller:\n  image: factory.talos.dev/metal-installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.14.7\n"), good: patches('apiVersion: v1alpha1\nkind: UnattendedInstallConfig\nprovisioning:\n  diskSelector:\n    match: disk.dev_path == "/dev/sda"\n  wipe: false\ninstaller:\n  image: factory.talos.dev/metal-installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.14.7\n'), path: "UnattendedInstallConfig.provisioning.diskSelector.match", message: /required/ },

  // ------------------------------------------------------------ tokens
  { check: "the machine token has the trustd token format", minor: 13, bad: patches("machine:\n  token: NotAToken\n"), path: "machine.token", message: /6 and 16 lowercase letters or digits/ },
  { check: "the machine token is required", minor: 9, bad: patches("machine:\n  token:\n    $patch: delete\n"), path: "machine.token", message: /required/ },
  { check: "the bootstrap token has the Kubernetes format", minor: 14, role: "worker", bad: patches("cluster:\n  token: abcdef-0123456789abcdef\n"), path: "cluster.token", message: /6 and 16 lowercase letters or digits/ },

  // ------------------------------------------------------------ URLs and formats
  { check: "the endpoint is an https URL", minor: 11, bad: patches("cluster:\n  controlPlane:\n    endpoint: base:6443\n"), good: patches("cluster:\n  controlPlane:\n    endpoint: https://10.0.0.10:6443\n"), path: "cluster.controlPlane.endpoint", message: /not a URL: it needs a scheme, e.g. https:\/\/base:6443/ },
  { check: "the endpoint port is in range", minor: 12, bad: patches("cluster:\n  controlPlane:\n    endpoint: https://base:70000\n"), path: "cluster.controlPlane.endpoint", message: /port is between 1 and 65535/ },
  { check: "1.14: KubeClusterConfig.endpoint is a URL", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: KubeClusterConfig\nendpoint: ftp://base\n"), path: "KubeClusterConfig.endpoint", message: /must start with https:\/\/ or http:\/\// },
  { check: "the discovery service endpoint has no path", minor: 11, bad: patches("cluster:\n  discovery:\n    registries:\n      service:\n        endpoint: https://discovery.example/v1\n"), good: patches("cluster:\n  discovery:\n    registries:\n      service:\n        endpoint: https://discovery.example/\n"), path: "cluster.discovery.registries.service.endpoint", message: /must not have a path/ },
  { check: "1.14: DiscoveryServiceConfig.endpoint is http(s) or grpc", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: DiscoveryServiceConfig\nname: default\nendpoint: discovery.talos.dev\n"), path: "DiscoveryServiceConfig[default].endpoint", message: /needs a scheme, e.g. https:\/\/discovery.talos.dev/ },
  { check: "the DNS domain is a DNS name", minor: 13, bad: patches("cluster:\n  network:\n    dnsDomain: cluster local\n"), good: patches("cluster:\n  network:\n    dnsDomain: cluster.internal\n"), path: "cluster.network.dnsDomain", message: /not a valid DNS name/ },
  { check: "pod subnets are CIDRs", minor: 10, bad: patches("cluster:\n  network:\n    podSubnets: [10.244.0.0]\n"), good: patches("cluster:\n  network:\n    podSubnets: [10.32.0.0/12]\n"), path: "cluster.network.podSubnets[0]", message: /CIDR/ },
  { check: "1.14: pod and service subnets pair up", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: KubeNetworkConfig\npodSubnets: [10.244.0.0/16, fd00:10:244::/56]\n"), good: patches("apiVersion: v1alpha1\nkind: KubeNetworkConfig\npodSubnets: [10.244.0.0/16, fd00:10:244::/56]\nserviceSubnets: [10.96.0.0/12, fd00:10:96::/112]\n"), path: "KubeNetworkConfig.serviceSubnets", message: /as many subnets as podSubnets/ },
  { check: "the secretbox key is 32 bytes of base64", minor: 13, bad: patches("cluster:\n  secretboxEncryptionSecret: c2hvcnQ=\n"), path: "cluster.secretboxEncryptionSecret", message: /decodes to 5 bytes; it must be 32/ },
  { check: "the cluster secret is base64", minor: 11, bad: patches("cluster:\n  secret: not base64!\n"), path: "cluster.secret", message: /standard base64/ },
  { check: "1.14: the discovery cluster secret is an AES-256 key", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: DiscoveryIdentityConfig\nclusterSecret: c2hvcnQ=\n"), path: "DiscoveryIdentityConfig.clusterSecret", message: /32 random bytes/ },
  { check: "interface addresses are CIDRs", minor: 11, role: "worker", bad: patches("machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses: [10.0.0.300/24]\n"), good: patches("machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses: [10.0.0.30/24]\n        routes:\n          - network: 0.0.0.0/0\n            gateway: 10.0.0.1\n"), path: "machine.network.interfaces[0].addresses[0]", message: /CIDR form/ },
  { check: "an interface needs a name or a selector", minor: 10, role: "worker", bad: patches("machine:\n  network:\n    interfaces:\n      - dhcp: true\n"), path: "machine.network.interfaces[0]", message: /needs interface:/ },
  { check: "a shared VIP only on control planes", minor: 11, role: "worker", bad: patches("machine:\n  network:\n    interfaces:\n      - interface: eth0\n        vip:\n          ip: 10.0.0.5\n"), path: "machine.network.interfaces[0].vip", message: /only allowed on control-plane/ },
  { check: "1.14: LinkConfig addresses carry a prefix length", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\naddresses:\n  - address: 10.0.0.11\n"), good: patches("apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\naddresses:\n  - address: 10.0.0.11/24\nroutes:\n  - gateway: 10.0.0.1\n"), path: "LinkConfig[eth0].addresses[0].address", message: /prefix length/ },
  { check: "1.14: a Layer2VIPConfig is named by its IP", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: vip\nlink: eth0\n"), good: patches("apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: 10.0.0.5\nlink: eth0\n"), path: "Layer2VIPConfig[vip].name", message: /must be an IP address/ },
  { check: "1.13: registry mirror endpoints are URLs", minor: 13, bad: patches("apiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: docker.io\nendpoints:\n  - url: mirror.local\n"), good: patches("apiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: docker.io\nendpoints:\n  - url: https://mirror.local\n"), path: "RegistryMirrorConfig[docker.io].endpoints[0].url", message: /not a URL/ },
  { check: "node labels follow Kubernetes rules", minor: 12, bad: patches("machine:\n  nodeLabels:\n    bad key!: x\n"), good: patches("machine:\n  nodeLabels:\n    example.com/rack: r1\n"), path: "machine.nodeLabels.bad key!", message: /label key/ },
  { check: "1.14: taints have a valid effect", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: KubeNodeConfig\ntaints:\n  dedicated: gpu:Sometimes\n"), good: patches("apiVersion: v1alpha1\nkind: KubeNodeConfig\ntaints:\n  dedicated: gpu:NoExecute\n"), path: "KubeNodeConfig.taints.dedicated", message: /effect must be one of/ },
  { check: "1.14: KubePrism port is a port", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: KubePrismConfig\nport: 70000\n"), path: "KubePrismConfig.port", message: /between 1 and 65535/ },
  { check: "1.14: authorizer types", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: KubeAuthorizerConfig\nname: rbac\ntype: ABAC\n"), path: "KubeAuthorizerConfig[rbac].type", message: /one of Node, RBAC, Webhook/ },
  { check: "custom CNI URLs", minor: 13, bad: patches("cluster:\n  network:\n    cni:\n      name: custom\n      urls: [cilium.yaml]\n"), good: patches("cluster:\n  network:\n    cni:\n      name: custom\n      urls: [https://example.com/cilium.yaml]\n"), path: "cluster.network.cni.urls[0]", message: /not a URL/ },

  // ------------------------------------------------------------ certificates and keys
  { check: "the Talos API CA key matches its certificate", minor: 13, bad: mutate((d) => void (doc(d, "v1alpha1").machine.ca.key = doc(d, "v1alpha1").cluster.ca.key)), path: "machine.ca.key", message: /does not belong to the certificate in machine\.ca\.crt/ },
  { check: "the Kubernetes CA key matches its certificate", minor: 11, bad: mutate((d) => void (doc(d, "v1alpha1").cluster.ca.key = doc(d, "v1alpha1").cluster.aggregatorCA.key)), path: "cluster.ca.key", message: /key \(ecdsa-p256\) does not belong/ },
  { check: "certificates parse", minor: 12, bad: patches(`machine:\n  ca:\n    crt: ${b64("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}\n`), path: "machine.ca.crt", message: /not a PEM certificate/ },
  { check: "keys parse", minor: 10, bad: patches(`cluster:\n  etcd:\n    ca:\n      key: ${b64("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")}\n`), path: "cluster.etcd.ca.key", message: /not a usable private key/ },
  { check: "a CA certificate is a CA", minor: 13, bad: mutate((d) => void (doc(d, "v1alpha1").machine.ca.crt = b64(leafCertPem))), path: "machine.ca.crt", message: /not a CA certificate/, alsoAt: ["machine.ca.key"] },
  { check: "workers do not hold the Talos API CA key", minor: 12, role: "worker", bad: mutate((d) => void (doc(d, "v1alpha1").machine.ca.key = doc(golden(12, "controlplane"), "v1alpha1").machine.ca.key)), path: "machine.ca.key", message: /must be empty on worker nodes/ },
  { check: "control planes hold the Talos API CA key", minor: 14, bad: patches("machine:\n  ca:\n    key:\n      $patch: delete\n"), path: "machine.ca.key", message: /required on control-plane/ },
  { check: "the service-account key signs tokens (RSA or ECDSA)", minor: 13, bad: mutate((d) => void (doc(d, "v1alpha1").cluster.serviceAccount.key = doc(d, "v1alpha1").machine.ca.key)), path: "cluster.serviceAccount.key", message: /the key is ed25519; kube-apiserver signs/ },
  { check: "1.14: KubeAPIServerCAConfig key matches its certificate", minor: 14, bad: mutate((d) => void (doc(d, "KubeAPIServerCAConfig").issuingCA.key = doc(d, "KubeAggregatorCAConfig").issuingCA.key)), path: "KubeAPIServerCAConfig.issuingCA.key", message: /does not belong/ },
  { check: "1.14: KubeServiceAccountConfig key parses", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: KubeServiceAccountConfig\nissuer:\n  privateKey: not a key\n"), path: "KubeServiceAccountConfig.issuer.privateKey", message: /not a usable private key/ },
  { check: "1.14: workers list the Kubernetes CA as accepted, without its key", minor: 14, role: "worker", bad: mutate((d) => void (doc(d, "KubeAPIServerCAConfig").issuingCA = doc(golden(14, "controlplane"), "KubeAPIServerCAConfig").issuingCA)), path: "KubeAPIServerCAConfig.issuingCA.key", message: /must be empty on worker nodes/ },

  // ------------------------------------------------------------ mutually exclusive documents
  { check: "1.14: KubeletConfig and machine.kubelet exclude each other", minor: 14, bad: patches("machine:\n  kubelet:\n    image: ghcr.io/siderolabs/kubelet:v1.28.0\n"), path: "machine.kubelet", message: /cannot be used together with the KubeletConfig document/ },
  { check: "1.14: UnattendedInstallConfig and machine.install exclude each other", minor: 14, bad: patches('machine:\n  install:\n    disk: /dev/sda\n---\napiVersion: v1alpha1\nkind: UnattendedInstallConfig\nprovisioning:\n  diskSelector:\n    match: disk.dev_path == "/dev/sda"\n'), path: "machine.install", message: /UnattendedInstallConfig/ },
  { check: "1.14: KubeClusterConfig and cluster.clusterName exclude each other", minor: 14, bad: patches("cluster:\n  clusterName: base\n"), path: "cluster.clusterName", message: /KubeClusterConfig/ },
  { check: "1.14: DiscoveryIdentityConfig and cluster.id exclude each other", minor: 14, bad: patches("cluster:\n  id: 0raF93qnkMvF-FZNuvyGozXNdLiT2FOWSlyBaW4PR-w=\n"), path: "cluster.id", message: /DiscoveryIdentityConfig/ },
  { check: "1.13: HostnameConfig and machine.network.hostname exclude each other", minor: 13, bad: patches("machine:\n  network:\n    hostname: cp-1\n"), path: "machine.network.hostname", message: /HostnameConfig/ },
  { check: "1.12: HostnameConfig.hostname and auto: stable exclude each other", minor: 12, bad: patches("apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp-1\n"), good: patches("apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp-1\nauto:\n  $patch: delete\n"), path: "HostnameConfig.auto", message: /cannot be "stable" while hostname: is set/ },
  { check: "two documents for one link conflict", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: LinkConfig\nname: bond0\n---\napiVersion: v1alpha1\nkind: BondConfig\nname: bond0\nlinks: [eth0, eth1]\nbondMode: active-backup\n"), path: "BondConfig[bond0]", message: /configures link "bond0", which LinkConfig\[bond0\] configures too/ },
  { check: "a document appears once", minor: 13, bad: (d) => [...d, structuredClone(doc(d, "HostnameConfig"))], path: "HostnameConfig", message: /appears twice/ },
  { check: "1.14: control-plane documents are refused on workers", minor: 14, role: "worker", bad: patches("apiVersion: v1alpha1\nkind: KubeSchedulerConfig\nimage: registry.k8s.io/kube-scheduler:v1.28.0\n"), path: "KubeSchedulerConfig", message: /only allowed on control-plane nodes/ },
  { check: "1.14: discovery needs a cluster identity", minor: 14, role: "worker", bad: patches("apiVersion: v1alpha1\nkind: DiscoveryIdentityConfig\n$patch: delete\n"), path: "DiscoveryIdentityConfig", message: /required while a DiscoveryServiceConfig is present/ },

  // ------------------------------------------------------------ modes
  { check: "metal mode needs an install disk (≤ 1.13)", minor: 13, mode: "metal", bad: (d) => d, good: patches("machine:\n  install:\n    disk: /dev/sda\n"), path: "machine.install.disk", message: /required in metal mode/ },
  { check: "metal mode needs install instructions (≤ 1.13)", minor: 9, role: "worker", mode: "metal", bad: patches("machine:\n  install:\n    $patch: delete\n"), good: patches("machine:\n  install:\n    diskSelector:\n      size: '>= 10GB'\n"), path: "machine.install", message: /required in metal mode/ },
  { check: "1.14 metal mode warns without UnattendedInstallConfig", minor: 14, mode: "metal", level: "warnings", bad: (d) => d, good: patches('apiVersion: v1alpha1\nkind: UnattendedInstallConfig\nprovisioning:\n  diskSelector:\n    match: disk.dev_path == "/dev/sda"\ninstaller:\n  image: factory.talos.dev/metal-installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.14.7\n'), path: "UnattendedInstallConfig", message: /will not install/ },
  { check: "container mode needs host DNS", minor: 13, mode: "container", bad: patches("machine:\n  features:\n    hostDNS:\n      forwardKubeDNSToHost: false\n"), path: "machine.features.hostDNS.forwardKubeDNSToHost", message: /must be true in container mode/ },

  // ------------------------------------------------------------ the schema: unknown keys, types, enums, kinds
  { check: "unknown keys in v1alpha1", minor: 13, bad: patches("machine:\n  kubelet:\n    imagee: x\n"), path: "machine.kubelet.imagee", message: /unknown key "imagee"; known here: .*image/ },
  { check: "unknown keys in a document", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: KubeletConfig\nextraArg: {v: '2'}\n"), good: patches("apiVersion: v1alpha1\nkind: KubeletConfig\nextraArgs: {v: '2'}\n"), path: "KubeletConfig.extraArg", message: /unknown key "extraArg"/ },
  { check: "types", minor: 12, bad: patches("machine:\n  certSANs:\n    $patch: delete\n---\nmachine:\n  certSANs: 10.0.0.1\n"), path: "machine.certSANs", message: /expected a list, found a string/ },
  { check: "enums", minor: 14, bad: patches("apiVersion: v1alpha1\nkind: ResolverConfig\nnameservers:\n  - address: 10.0.0.53\n    protocol: DNS\n"), good: patches("apiVersion: v1alpha1\nkind: ResolverConfig\nnameservers:\n  - address: 10.0.0.53\n    protocol: Do53\n"), path: "ResolverConfig.nameservers[0].protocol", message: /must be one of "Do53", "DoT", "DoH", not "DNS"/ },
  { check: "document kinds exist in the contract", minor: 12, bad: patches("apiVersion: v1alpha1\nkind: KubeletConfig\nimage: x\n"), path: "KubeletConfig", message: /Talos 1.12 has no "KubeletConfig" document/ },

  // ------------------------------------------------------------ deprecated fields: warnings, not errors
  { check: "1.14: machine.kubelet without KubeletConfig is deprecated", minor: 14, role: "worker", level: "warnings", bad: patches("apiVersion: v1alpha1\nkind: KubeletConfig\n$patch: delete\n---\nmachine:\n  kubelet:\n    image: ghcr.io/siderolabs/kubelet:v1.28.0\n"), path: "machine.kubelet", message: /deprecated in Talos 1\.14 \(still accepted\): use a KubeletConfig document/ },
  { check: "1.12: machine.install.extraKernelArgs is deprecated", minor: 12, level: "warnings", bad: patches("machine:\n  install:\n    grubUseUKICmdline: false\n    extraKernelArgs: [console=ttyS0]\n"), path: "machine.install.extraKernelArgs", message: /schematic/ },
];

describe.skipIf(!haveGoldens)("Talos's generated configs pass our validator", () => {
  for (const minor of MINORS) {
    for (const role of ["controlplane", "worker"] as const) {
      it(`1.${minor} ${role}: no errors and no warnings (with the 1.${minor} schema)`, () => {
        const result = validate(minor, golden(minor, role));
        // No golden uses a deprecated field of its own contract: the list of allowed warnings is empty.
        expect(result).toEqual({ errors: [], warnings: [] });
      });
    }
  }
});

describe.skipIf(!haveGoldens)("each check fails on a config broken its way and passes otherwise", () => {
  beforeAll(async () => {
    // A leaf certificate signed by the golden's Talos API CA: valid, but not a CA.
    const v1 = doc(golden(13, "controlplane"), "v1alpha1");
    const leaf = await issueCertificate(
      { crt: pem(v1.machine.ca.crt), key: pem(v1.machine.ca.key) },
      {
        subject: { organizations: ["os:admin"] },
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 3600_000),
        keyUsage: x509.KeyUsageFlags.digitalSignature,
        extendedKeyUsage: [x509.ExtendedKeyUsage.clientAuth],
      },
    );
    leafCertPem = leaf.crt;
  });

  for (const c of CASES) {
    const role = c.role ?? "controlplane";
    const level = c.level ?? "errors";
    it(`${c.check} (1.${c.minor} ${role}${c.mode ? `, ${c.mode}` : ""})`, () => {
      const bad = validate(c.minor, c.bad(golden(c.minor, role), c.minor), { mode: c.mode });
      const hit = bad[level].find((p) => p.path === c.path);
      expect(hit, `expected ${level} at ${c.path}; got ${JSON.stringify(bad)}`).toBeDefined();
      expect(hit!.message).toMatch(c.message);
      if (level === "warnings") expect(bad.errors).toEqual([]);
      const unexpected = bad.errors.filter((p) => p.path !== c.path && !(c.alsoAt ?? []).includes(p.path));
      expect(unexpected, "no other errors").toEqual([]);

      const good = validate(c.minor, (c.good ?? ((d) => d))(golden(c.minor, role), c.minor), { mode: c.mode });
      expect(good).toEqual({ errors: [], warnings: [] });
    });
  }

  it("without a schema, unknown keys are not checked (the other checks still run)", () => {
    const docs = patched(13, golden(13, "controlplane"), "machine:\n  kubelet:\n    imagee: x\n  token: bad\n");
    const result = validate(13, docs, { schema: false });
    expect(result.errors.map((p) => p.path)).toEqual(["machine.token"]);
  });

  it("certificates past their expiry are errors", () => {
    const result = validate(14, golden(14, "worker"), { now: new Date("2040-01-01T00:00:00Z") });
    const expired = result.errors.find((p) => p.path === "machine.ca.crt");
    expect(expired?.message).toMatch(/expired on 2033-10-09/);
    expect(validate(14, golden(14, "worker"), { now: new Date("2033-10-01T00:00:00Z") }).errors).toEqual([]);
  });

  it("messages never echo tokens, secrets or keys", () => {
    const secretToken = "zzzzzz.zzzzzzzzzzzzzzzZ";
    // 44 base64 characters ending "==": 31 bytes, one short of a key.
    const docs = patched(13, golden(13, "controlplane"), `machine:\n  token: ${secretToken}\ncluster:\n  secret: ${"A".repeat(42)}==\n`);
    const result = validate(13, docs);
    const text = JSON.stringify(result);
    expect(result.errors.map((p) => p.path).sort()).toEqual(["cluster.secret", "machine.token"]);
    expect(text).not.toContain(secretToken);
    expect(text).not.toContain("A".repeat(42));
  });

  it("the deprecated-field table names a replacement for each field", () => {
    for (const f of DEPRECATED_FIELDS) expect(f.instead.length, f.path).toBeGreaterThan(5);
  });
});

describe.skipIf(!haveGoldens)("talos-netboot validate", () => {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "talos-validate-"));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  function io(): CliIo & { stdout: string; stderr: string; code: number | undefined } {
    const state = {
      stdout: "",
      stderr: "",
      code: undefined as number | undefined,
      out: (t: string) => void (state.stdout += t),
      err: (t: string) => void (state.stderr += t),
      readFile: (p: string) => readFileSync(p, "utf8"),
      exit: (c: number) => void (state.code = c),
    };
    return state;
  }

  function write(name: string, docs: ConfigDocument[]): string {
    const path = join(dir, name);
    writeFileSync(path, stringifyDocuments(docs), { mode: 0o600 });
    return path;
  }

  it("exits 0 for a valid config and says so", () => {
    const config = write("cp.yaml", patched(13, golden(13, "controlplane"), "machine:\n  install:\n    disk: /dev/sda\n"));
    const out = io();
    expect(runValidate({ config, mode: "metal", talosVersion: "1.13.5", schema: referenceDir("talos", "config.schema.v1.13.json") }, out)).toBe(0);
    expect(out.stdout).toBe(`${config} is valid for metal mode (Talos 1.13 rules)\n`);
    expect(out.stderr).toBe("");
  });

  it("exits 1 listing every problem", () => {
    const config = write("bad.yaml", patched(13, golden(13, "controlplane"), "machine:\n  token: bad\n"));
    const out = io();
    expect(runValidate({ config, mode: "metal", talosVersion: "1.13" }, out)).toBe(1);
    expect(out.stderr).toContain("2 problems");
    expect(out.stderr).toContain("  machine.token: ");
    expect(out.stderr).toContain("  machine.install.disk: required in metal mode");
    expect(out.stdout).toBe("");
  });

  it("prints warnings and still passes; --strict fails on them", () => {
    const config = write("w.yaml", golden(14, "controlplane"));
    const out = io();
    expect(runValidate({ config, mode: "metal", talosVersion: "1.14" }, out)).toBe(0);
    expect(out.stderr).toMatch(/^warning: UnattendedInstallConfig: metal mode without/m);
    const strict = io();
    expect(runValidate({ config, mode: "metal", talosVersion: "1.14", strict: true }, strict)).toBe(1);
  });

  it("is a talos-netboot command with talosctl's flags", async () => {
    const config = write("cli.yaml", golden(12, "worker"));
    const out = io();
    const program = new Command().exitOverride();
    registerValidateCommand(program, out);
    await program.parseAsync(["node", "talos-netboot", "validate", "--config", config, "--mode", "cloud", "--talos-version", "1.12"]);
    expect(out.code).toBe(0);

    const badMode = new Command().exitOverride().configureOutput({ writeErr: () => {} });
    registerValidateCommand(badMode, io());
    await expect(badMode.parseAsync(["node", "talos-netboot", "validate", "--config", config, "--mode", "bare"])).rejects.toThrow(/Allowed choices are metal, cloud, container, metal-agent/);
  });

  it("refuses an unreadable config and an unsupported Talos version", () => {
    const out = io();
    expect(runValidate({ config: join(dir, "missing.yaml"), mode: "metal" }, out)).toBe(1);
    expect(out.stderr).toMatch(/cannot read .*missing\.yaml/);
    const old = io();
    expect(runValidate({ config: write("x.yaml", golden(13, "worker")), mode: "metal", talosVersion: "1.8" }, old)).toBe(1);
    expect(old.stderr).toMatch(/Talos 1\.8 is not supported/);
  });
});
