/**
 * A Talos version contract: what the config generator emits for one Talos
 * minor release, and where each option lands. Each supported minor is one
 * value of this type in its own file; supporting a new minor is a new file
 * plus one line in ./index.ts.
 *
 * The layout switches mirror Talos's own `VersionContract` predicates
 * (pkg/machinery/config/contract.go), named after the place a setting lives
 * rather than after the release that moved it.
 */
export interface Contract {
  /** "1.14": the contract is major.minor. */
  readonly version: string;
  readonly major: number;
  readonly minor: number;
  /** Newest Talos patch release we know of for this minor (for `1.14` → `1.14.7`). */
  readonly newestPatch: string;
  /** Kubernetes version Talos's own generator defaults to at that patch. */
  readonly defaultKubernetesVersion: string;
  /**
   * Kubernetes minors this Talos minor supports, inclusive
   * (pkg/machinery/compatibility/talos1xx: Minimum…Maximum).
   */
  readonly kubernetes: { readonly oldestMinor: string; readonly newestMinor: string };
  readonly installer: InstallerRule;
  readonly layout: Layout;
}

export interface InstallerRule {
  /**
   * `release`: Sidero publishes `ghcr.io/siderolabs/installer:v<version>`;
   * `factory`: only the Image Factory's installer exists (1.14+).
   */
  readonly default: "release" | "factory";
  /** Image Factory installer path: `installer` below 1.10, `metal-installer` from 1.10. */
  readonly factoryPath: "installer" | "metal-installer";
}

export interface Layout {
  /** `machine.features.rbac`, `stableHostname`, `apidCheckExtKeyUsage` are written (≤ 1.11). */
  readonly legacyFeatureFlags: boolean;
  /** `cluster.apiServer.certSANs` starts with the endpoint's host (≤ 1.11). */
  readonly apiServerSANsIncludeEndpoint: boolean;
  /** `cluster.apiServer.disablePodSecurityPolicy: true` is written (≤ 1.11). */
  readonly disablePodSecurityPolicy: boolean;
  /** `machine.install.grubUseUKICmdline: true` is written (1.12, 1.13). */
  readonly grubUseUKICmdline: boolean;
  /** An empty `machine.network: {}` is written when there are no network settings (≤ 1.12). */
  readonly emptyMachineNetwork: boolean;
  /** Hostname: `machine.network.hostname` or a `HostnameConfig` document (1.12+, which also carries `auto: stable`). */
  readonly hostname: "machine.network" | "HostnameConfig";
  /** Static addresses, routes, nameservers, VIP: `machine.network` or LinkConfig/Layer2VIPConfig/ResolverConfig documents. */
  readonly network: "machine.network" | "documents";
  /** Registry mirrors: `machine.registries.mirrors` or one `RegistryMirrorConfig` per host. */
  readonly registryMirrors: "machine.registries" | "RegistryMirrorConfig";
  /** STATE/EPHEMERAL encryption: `machine.systemDiskEncryption` or `VolumeConfig.encryption`. */
  readonly diskEncryption: "machine.systemDiskEncryption" | "VolumeConfig";
  /**
   * `machine.install.extraKernelArgs`: `honoured` (GRUB everywhere), `grub-bios-only`
   * (ignored under systemd-boot, the UEFI default since 1.10), `deprecated`
   * (still written by Talos's generator, absent from the schema), `schematic`
   * (gone: kernel args belong in the Image Factory schematic).
   */
  readonly installExtraKernelArgs: "honoured" | "grub-bios-only" | "deprecated" | "schematic";
  /** Install disk and image: `machine.install` or an `UnattendedInstallConfig` document. */
  readonly install: "machine.install" | "UnattendedInstallConfig";
  /** Kubernetes settings: in `v1alpha1` (`machine.kubelet`, `cluster.*`) or in the `Kube*Config` documents. */
  readonly kubernetes: "v1alpha1" | "documents";
  /** Sysctls: `machine.sysctls` or a `SysctlConfig` document. */
  readonly sysctls: "machine.sysctls" | "SysctlConfig";
  /** Discovery: `cluster.discovery` + `cluster.id/secret`, or DiscoveryServiceConfig + DiscoveryIdentityConfig. */
  readonly discovery: "v1alpha1" | "documents";
  /** Host DNS: `machine.features.hostDNS` or `ResolverConfig.hostDNS`. */
  readonly hostDNS: "machine.features" | "ResolverConfig";
  /** The generator writes `VolumeConfig EPHEMERAL` (secure mount) and `FilesystemTrimConfig` (1.14+). */
  readonly defaultVolumeDocuments: boolean;
  /** The generator writes `SecurityProfileConfig` with workload isolation (1.14+). */
  readonly securityProfile: boolean;
}
