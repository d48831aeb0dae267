/**
 * The small machine documents that sit between the v1alpha1 document and the
 * Kubernetes documents, in the order Talos's generator appends them.
 */
import { compact, docOf, sortedMap, type Context, type Doc } from "./context.js";
import { DISCOVERY_SERVICE_ENDPOINT, FILESYSTEM_TRIM_INTERVAL } from "./defaults.js";
import { systemVolumeDocuments } from "./encryption.js";
import { resolverNameservers } from "./network.js";

export function discoveryDocuments(ctx: Context): Doc[] {
  if (ctx.layout.discovery !== "documents") return [];
  return [
    docOf("DiscoveryServiceConfig", { name: "default", endpoint: DISCOVERY_SERVICE_ENDPOINT }),
    docOf("DiscoveryIdentityConfig", { clusterID: ctx.secrets.clusterId, clusterSecret: ctx.secrets.clusterSecret }),
  ];
}

/**
 * UnattendedInstallConfig (1.14+). Like Talos, only with an install disk:
 * the document's disk selector is derived from it.
 */
export function installDocuments(ctx: Context): Doc[] {
  if (ctx.layout.install !== "UnattendedInstallConfig") return [];
  const { installDisk, installImage } = ctx.options;
  if (installDisk === undefined) return [];
  return [
    docOf("UnattendedInstallConfig", {
      installer: compact({ image: installImage }),
      provisioning: { diskSelector: { match: `disk.dev_path == ${JSON.stringify(installDisk)}` }, wipe: false },
    }),
  ];
}

export function hostDNS(): Doc {
  return { enabled: true, forwardKubeDNSToHost: true };
}

/** ResolverConfig (1.14+: host DNS; nameservers merged in). */
export function resolverDocuments(ctx: Context): Doc[] {
  if (ctx.layout.hostDNS !== "ResolverConfig") return [];
  return [docOf("ResolverConfig", compact({ nameservers: resolverNameservers(ctx), hostDNS: hostDNS() }))];
}

export function sysctlDocuments(ctx: Context): Doc[] {
  const sysctls = ctx.options.sysctls;
  if (ctx.layout.sysctls !== "SysctlConfig" || sysctls === undefined || Object.keys(sysctls).length === 0) return [];
  return [docOf("SysctlConfig", { params: sortedMap(sysctls) })];
}

export function blockDocuments(ctx: Context): Doc[] {
  const docs = systemVolumeDocuments(ctx);
  if (ctx.layout.defaultVolumeDocuments) docs.push(docOf("FilesystemTrimConfig", { interval: FILESYSTEM_TRIM_INTERVAL }));
  return docs;
}

export function securityProfileDocuments(ctx: Context): Doc[] {
  return ctx.layout.securityProfile ? [docOf("SecurityProfileConfig", { workloadIsolation: true })] : [];
}

/** One RegistryMirrorConfig per host (1.12+), sorted by host as Talos sorts them. */
export function registryDocuments(ctx: Context): Doc[] {
  const mirrors = ctx.options.registryMirrors;
  if (ctx.layout.registryMirrors !== "RegistryMirrorConfig" || mirrors === undefined) return [];
  return Object.entries(sortedMap(mirrors)).map(([host, urls]) =>
    docOf("RegistryMirrorConfig", { name: host, endpoints: urls.map((url) => ({ url })) }),
  );
}
