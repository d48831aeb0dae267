/**
 * v1alpha1 fields Talos still reads but has deprecated: they are missing
 * from its JSON schema (docgen:nodoc), so a key check derived from the schema
 * must warn on them, not fail. Taken from the `Deprecated:` comments of
 * pkg/machinery/config/types/v1alpha1/v1alpha1_types.go on each release
 * branch (1.9 … 1.14); no other document kind has deprecated fields.
 *
 * `since` is the first contract whose schema lacks the field. A path covers
 * everything below it.
 */
import type { Contract } from "../contracts/index.js";

export interface DeprecatedField {
  readonly path: string;
  /** major.minor as a number pair. */
  readonly since: readonly [number, number];
  /** What to use instead. */
  readonly instead: string;
}

const F = (path: string, minor: number, instead: string): DeprecatedField => ({ path, since: [1, minor], instead });

export const DEPRECATED_FIELDS: readonly DeprecatedField[] = [
  // `persist` is left out on purpose: every Talos generator still writes `persist: true`
  // (Talos warns about nothing there and rejects only `false`, which the validator checks).
  F("machine.install.bootloader", 9, "nothing: it never had an effect"),
  F("cluster.etcd.subnet", 9, "cluster.etcd.advertisedSubnets"),
  F("cluster.allowSchedulingOnMasters", 9, "cluster.allowSchedulingOnControlPlanes (from 1.14 a KubeNodeConfig without the control-plane taint)"),
  F("machine.disks", 10, "UserVolumeConfig documents"),
  F("machine.install.extensions", 10, "an installer image with the extensions built in (Image Factory schematic)"),
  F("machine.systemDiskEncryption", 11, "VolumeConfig documents for STATE and EPHEMERAL with `encryption`"),
  F("machine.network.hostname", 12, "a HostnameConfig document"),
  F("machine.network.interfaces", 12, "LinkConfig, BondConfig, VLANConfig and Layer2VIPConfig documents"),
  F("machine.network.nameservers", 12, "a ResolverConfig document"),
  F("machine.network.searchDomains", 12, "a ResolverConfig document"),
  F("machine.network.disableSearchDomain", 12, "a ResolverConfig document"),
  F("machine.network.extraHostEntries", 12, "StaticHostConfig documents"),
  F("machine.install.extraKernelArgs", 12, "the Image Factory schematic's customization.extraKernelArgs"),
  F("machine.time", 12, "a TimeSyncConfig document"),
  F("machine.registries", 12, "RegistryMirrorConfig, RegistryAuthConfig and RegistryTLSConfig documents"),
  F("machine.features.rbac", 12, "nothing: RBAC is always on"),
  F("machine.features.stableHostname", 12, "a HostnameConfig document with `auto: stable`"),
  F("machine.features.apidCheckExtKeyUsage", 12, "nothing: the check is always on"),
  F("cluster.apiServer.disablePodSecurityPolicy", 12, "nothing: PodSecurityPolicy is gone from Kubernetes"),
  F("machine.network", 13, "the multi-document network config (LinkConfig, ResolverConfig, HostnameConfig, …)"),
  F("machine.env", 13, "an EnvironmentConfig document"),
  F("machine.controlPlane", 14, "KubeControllerManagerConfig and KubeSchedulerConfig documents"),
  F("machine.kubelet", 14, "a KubeletConfig document (node labels, taints, node IP: KubeNodeConfig)"),
  F("machine.pods", 14, "KubeStaticPodConfig documents"),
  F("machine.install", 14, "an UnattendedInstallConfig document"),
  F("machine.files", 14, "EtcFileConfig or CRICustomizationConfig documents"),
  F("machine.sysctls", 14, "a SysctlConfig document"),
  F("machine.sysfs", 14, "a SysfsConfig document"),
  F("machine.features.kubernetesTalosAPIAccess", 14, "a KubeTalosAPIAccessConfig document"),
  F("machine.features.kubePrism", 14, "a KubePrismConfig document"),
  F("machine.features.hostDNS", 14, "a ResolverConfig document with `hostDNS`"),
  F("machine.features.imageCache", 14, "an ImageCacheConfig document"),
  F("machine.udev", 14, "a UdevRulesConfig document"),
  F("machine.kernel", 14, "KernelModuleConfig documents"),
  F("machine.baseRuntimeSpecOverrides", 14, "a CRIBaseRuntimeSpecConfig document"),
  F("machine.nodeLabels", 14, "a KubeNodeConfig document"),
  F("machine.nodeAnnotations", 14, "a KubeNodeConfig document"),
  F("machine.nodeTaints", 14, "a KubeNodeConfig document"),
  F("cluster.id", 14, "a DiscoveryIdentityConfig document"),
  F("cluster.secret", 14, "a DiscoveryIdentityConfig document"),
  F("cluster.controlPlane", 14, "a KubeClusterConfig document (local API port: KubeAPIServerConfig.apiPort)"),
  F("cluster.clusterName", 14, "a KubeClusterConfig document"),
  F("cluster.network", 14, "KubeNetworkConfig and KubeFlannelCNIConfig (or KubeExternalManifestConfig) documents"),
  F("cluster.aescbcEncryptionSecret", 14, "a KubeEtcdEncryptionConfig document"),
  F("cluster.secretboxEncryptionSecret", 14, "a KubeEtcdEncryptionConfig document"),
  F("cluster.ca", 14, "a KubeAPIServerCAConfig document"),
  F("cluster.acceptedCAs", 14, "a KubeAPIServerCAConfig document"),
  F("cluster.aggregatorCA", 14, "a KubeAggregatorCAConfig document"),
  F("cluster.serviceAccount", 14, "a KubeServiceAccountConfig document"),
  F("cluster.apiServer", 14, "a KubeAPIServerConfig document (and KubeAdmissionControlConfig, KubeAuditPolicyConfig, KubeAuthorizerConfig)"),
  F("cluster.controllerManager", 14, "a KubeControllerManagerConfig document"),
  F("cluster.proxy", 14, "a KubeProxyConfig document"),
  F("cluster.scheduler", 14, "a KubeSchedulerConfig document"),
  F("cluster.discovery", 14, "a DiscoveryServiceConfig document"),
  F("cluster.coreDNS", 14, "a KubeCoreDNSConfig document"),
  F("cluster.extraManifests", 14, "KubeExternalManifestConfig documents"),
  F("cluster.extraManifestHeaders", 14, "KubeExternalManifestConfig documents"),
  F("cluster.inlineManifests", 14, "KubeInlineManifestConfig documents"),
  F("cluster.allowSchedulingOnControlPlanes", 14, "a KubeNodeConfig document without the control-plane taint"),
];

function atLeast(contract: Contract, since: readonly [number, number]): boolean {
  return contract.major > since[0] || (contract.major === since[0] && contract.minor >= since[1]);
}

/**
 * The deprecated fields of a contract, outermost first per subtree: when
 * `machine.network` is deprecated, `machine.network.hostname` is not listed
 * again.
 */
export function deprecatedFields(contract: Contract): DeprecatedField[] {
  const active = DEPRECATED_FIELDS.filter((f) => atLeast(contract, f.since));
  return active.filter((f) => !active.some((g) => g !== f && f.path.startsWith(`${g.path}.`)));
}
