/**
 * What Talos rejects about the combination of documents
 * (pkg/machinery/config/container): duplicates, documents that claim the same
 * network link, kinds that exclude each other, control-plane-only documents
 * on workers, and the multi-document kinds that are mutually exclusive with
 * the v1alpha1 fields they replaced (each document's V1Alpha1ConflictValidate).
 */
import { documentKey, documentKind, documentName, isV1Alpha1 } from "../document.js";
import type { Context } from "./context.js";
import { at, documentLabel, mapping, present, text } from "./report.js";

/** Kinds that configure a network link named by the document (network.conflictingLinkKinds). */
const LINK_KINDS = new Set(["BondConfig", "BridgeConfig", "DummyLinkConfig", "LinkConfig", "VethConfig", "VLANConfig", "VRFConfig", "WireguardConfig"]);

/** ConflictsWithKinds outside the link kinds: the same name may not appear in both. */
const EXCLUSIVE_KINDS: ReadonlyArray<readonly [string, string]> = [
  ["Layer2VIPConfig", "HCloudVIPConfig"],
  ["UserVolumeConfig", "ExistingVolumeConfig"],
];

/** container.ControlplaneOnlyConfig implementations (release-1.14). */
const CONTROL_PLANE_ONLY = new Set([
  "KubeAdmissionControlConfig",
  "KubeAggregatorCAConfig",
  "KubeAPIServerConfig",
  "KubeAuditPolicyConfig",
  "KubeAuthenticationConfig",
  "KubeAuthorizerConfig",
  "KubeControllerManagerConfig",
  "KubeCoreDNSConfig",
  "KubeEtcdEncryptionConfig",
  "KubeFlannelCNIConfig",
  "KubeProxyConfig",
  "KubeSchedulerConfig",
  "KubeServiceAccountConfig",
  "KubeTalosAPIAccessConfig",
]);

type V1 = Record<string, unknown>;

interface Exclusion {
  /** The v1alpha1 field that conflicts, for the message and the path. */
  readonly field: string;
  readonly applies: (v1: V1, doc: Record<string, unknown>) => boolean;
}

const has = (field: string): Exclusion => ({ field, applies: (v1) => present(at(v1, field)) });
const nonEmpty = (field: string): Exclusion => ({
  field,
  applies: (v1) => {
    const v = at(v1, field);
    return Array.isArray(v) ? v.length > 0 : typeof v === "string" ? v !== "" : present(v);
  },
});
const isTrue = (field: string): Exclusion => ({ field, applies: (v1) => at(v1, field) === true });

/** Per document kind: the v1alpha1 fields Talos refuses next to it. */
const V1ALPHA1_EXCLUSIONS: Readonly<Record<string, readonly Exclusion[]>> = {
  HostnameConfig: [nonEmpty("machine.network.hostname"), isTrue("machine.features.stableHostname")],
  ResolverConfig: [
    has("machine.network.searchDomains"),
    nonEmpty("machine.network.nameservers"),
    isTrue("machine.network.disableSearchDomain"),
    { field: "machine.features.hostDNS", applies: (v1, doc) => present(doc.hostDNS) && present(at(v1, "machine.features.hostDNS")) },
  ],
  TimeSyncConfig: [isTrue("machine.time.disabled"), nonEmpty("machine.time.servers"), nonEmpty("machine.time.bootTimeout")],
  KubeSpanConfig: [has("machine.network.kubespan")],
  VolumeConfig: [
    {
      field: "machine.systemDiskEncryption",
      applies: (v1, doc) => {
        const name = typeof doc.name === "string" ? doc.name : "";
        return ["STATE", "EPHEMERAL"].includes(name) && present(doc.encryption) && present(at(v1, `machine.systemDiskEncryption.${name.toLowerCase()}`));
      },
    },
  ],
  DiscoveryIdentityConfig: [nonEmpty("cluster.id"), nonEmpty("cluster.secret")],
  DiscoveryServiceConfig: [has("cluster.discovery")],
  CRIBaseRuntimeSpecConfig: [has("machine.baseRuntimeSpecOverrides")],
  ImageCacheConfig: [has("machine.features.imageCache")],
  KubeAdmissionControlConfig: [nonEmpty("cluster.apiServer.admissionControl")],
  KubeAggregatorCAConfig: [has("cluster.aggregatorCA")],
  KubeAPIServerConfig: [has("cluster.apiServer"), nonEmpty("cluster.controlPlane.localAPIServerPort")],
  KubeAPIServerCAConfig: [has("cluster.ca")],
  KubeAuditPolicyConfig: [{ field: "cluster.apiServer.auditPolicy", applies: (v1) => Object.keys(mapping(at(v1, "cluster.apiServer.auditPolicy")) ?? {}).length > 0 }],
  // Talos checks the admission plugins here too (KubeAuthorizerConfigV1Alpha1.V1Alpha1ConflictValidate).
  KubeAuthorizerConfig: [nonEmpty("cluster.apiServer.admissionControl")],
  KubeClusterConfig: [nonEmpty("cluster.clusterName"), has("cluster.controlPlane.endpoint")],
  KubeControllerManagerConfig: [has("cluster.controllerManager"), has("machine.controlPlane.controllerManager")],
  KubeCoreDNSConfig: [has("cluster.coreDNS")],
  KubeCredentialProviderConfig: [has("machine.kubelet")],
  KubeEtcdEncryptionConfig: [nonEmpty("cluster.secretboxEncryptionSecret"), nonEmpty("cluster.aescbcEncryptionSecret")],
  KubeFlannelCNIConfig: [has("cluster.network")],
  KubeletConfig: [has("machine.kubelet")],
  KubePrismConfig: [has("machine.features.kubePrism")],
  KubeNetworkConfig: [has("cluster.network")],
  KubeNodeConfig: [
    has("cluster.allowSchedulingOnControlPlanes"),
    has("cluster.allowSchedulingOnMasters"),
    has("machine.kubelet.skipNodeRegistration"),
    has("machine.kubelet.registerWithFQDN"),
    has("machine.kubelet.nodeIP"),
    has("machine.nodeLabels"),
    has("machine.nodeAnnotations"),
    has("machine.nodeTaints"),
  ],
  KubeProxyConfig: [has("cluster.proxy")],
  KubeSchedulerConfig: [has("cluster.scheduler"), has("machine.controlPlane.scheduler")],
  KubeServiceAccountConfig: [has("cluster.serviceAccount")],
  KubeTalosAPIAccessConfig: [has("machine.features.kubernetesTalosAPIAccess")],
  UnattendedInstallConfig: [has("machine.install")],
};

export function checkConflicts(ctx: Context): void {
  checkDuplicates(ctx);
  checkLinks(ctx);
  checkExclusiveKinds(ctx);
  checkControlPlaneOnly(ctx);
  checkV1Alpha1Exclusions(ctx);
  checkCrossDocument(ctx);
}

function checkDuplicates(ctx: Context): void {
  const seen = new Set<string>();
  for (const doc of ctx.docs) {
    const key = documentKey(doc);
    if (seen.has(key)) {
      ctx.r.error(documentLabel(doc) || "v1alpha1", `appears twice: a config holds one ${isV1Alpha1(doc) ? "v1alpha1 document" : `${key} document`}`);
    }
    seen.add(key);
  }
}

function checkLinks(ctx: Context): void {
  const owners = new Map<string, string>();
  const claim = (link: string, by: string) => {
    const owner = owners.get(link);
    if (owner !== undefined) ctx.r.error(by, `configures link "${link}", which ${owner} configures too: one document per link`);
    else owners.set(link, by);
  };
  for (const doc of ctx.docs) {
    const kind = documentKind(doc);
    if (!LINK_KINDS.has(kind)) continue;
    const name = documentName(doc);
    if (name !== undefined) claim(name, documentLabel(doc));
    // A veth pair claims its peer's name as well (NetworkAdditionalLinkConfigs).
    const peer = text(mapping(doc.peer)?.name);
    if (kind === "VethConfig" && peer !== undefined) claim(peer, documentLabel(doc));
  }
}

function checkExclusiveKinds(ctx: Context): void {
  for (const [a, b] of EXCLUSIVE_KINDS) {
    const names = new Set(ctx.all(a).map((d) => d.name));
    for (const doc of ctx.all(b)) {
      if (names.has(doc.name)) ctx.r.error(documentLabel(doc), `cannot be used together with ${a} for the same name`);
    }
  }
}

function checkControlPlaneOnly(ctx: Context): void {
  if (!ctx.worker) return;
  for (const doc of ctx.docs) {
    if (CONTROL_PLANE_ONLY.has(documentKind(doc))) {
      ctx.r.error(documentLabel(doc), "only allowed on control-plane nodes (machine.type is worker): remove it from the worker config");
    }
  }
}

function checkV1Alpha1Exclusions(ctx: Context): void {
  const v1 = ctx.v1;
  if (!v1) return;
  const reported = new Set<string>();
  for (const doc of ctx.docs) {
    // A kind the contract does not have is reported as such; its exclusions would only add noise.
    if (!ctx.knownKind(documentKind(doc))) continue;
    for (const exclusion of V1ALPHA1_EXCLUSIONS[documentKind(doc)] ?? []) {
      if (!exclusion.applies(v1, doc)) continue;
      const key = `${exclusion.field}|${documentKind(doc)}`;
      if (reported.has(key)) continue;
      reported.add(key);
      ctx.r.error(
        exclusion.field,
        `cannot be used together with the ${documentKind(doc)} document (Talos rejects both): keep the setting in ${documentKind(doc)} and remove ${exclusion.field}`,
      );
    }
  }
}

/** Container-level rules that need several documents at once. */
function checkCrossDocument(ctx: Context): void {
  const { r, v1 } = ctx;
  if (ctx.all("DiscoveryServiceConfig").length > 0) {
    const identity = ctx.find("DiscoveryIdentityConfig");
    const legacyId = text(at(v1, "cluster.id"));
    const legacySecret = text(at(v1, "cluster.secret"));
    if (!identity && (!legacyId || !legacySecret)) {
      r.error("DiscoveryIdentityConfig", "required while a DiscoveryServiceConfig is present: the cluster ID and secret (secrets.yaml cluster.id, cluster.secret)");
    }
  }
  if (ctx.mode === "container") {
    const resolver = mapping(ctx.find("ResolverConfig")?.hostDNS);
    const legacy = mapping(at(v1, "machine.features.hostDNS"));
    const hostDNS = resolver ?? legacy;
    const where = resolver ? "ResolverConfig.hostDNS" : "machine.features.hostDNS";
    if (!hostDNS) r.error(where, "required in container mode: host DNS must be enabled and forward kube-dns to the host");
    else {
      if (hostDNS.enabled !== true) r.error(`${where}.enabled`, "must be true in container mode");
      if (hostDNS.forwardKubeDNSToHost !== true) r.error(`${where}.forwardKubeDNSToHost`, "must be true in container mode");
    }
  }
  const kubeSpan = ctx.find("KubeSpanConfig");
  if (kubeSpan?.enabled === true && ctx.all("DiscoveryServiceConfig").length === 0 && at(v1, "cluster.discovery.enabled") !== true) {
    r.error("KubeSpanConfig", "KubeSpan needs cluster discovery (a DiscoveryServiceConfig document or cluster.discovery.enabled)");
  }
}
