/**
 * The v1alpha1 document (`version: v1alpha1`, `machine`, `cluster`). Keys are
 * inserted in Talos's struct field order so the YAML reads like talosctl's.
 */
import {
  base64,
  compact,
  image,
  kubeletImage,
  nonEmpty,
  sortedMap,
  type Context,
  type Doc,
  type Role,
} from "./context.js";
import {
  APISERVER_IMAGE,
  auditPolicy,
  CONTROLLER_MANAGER_IMAGE,
  KUBEPRISM_PORT,
  LABEL_EXCLUDE_FROM_LB,
  podSecurityConfiguration,
  PROXY_IMAGE,
  SCHEDULER_IMAGE,
} from "./defaults.js";
import { hostDNS } from "./documents.js";
import { legacySystemDiskEncryption } from "./encryption.js";
import { legacyMachineNetwork } from "./network.js";

function install(ctx: Context): Doc | undefined {
  if (ctx.layout.install !== "machine.install") return undefined;
  const o = ctx.options;
  const kernelArgs = ctx.layout.installExtraKernelArgs === "schematic" ? undefined : nonEmpty(o.installExtraKernelArgs);
  return compact({
    disk: o.installDisk,
    extraKernelArgs: kernelArgs,
    image: o.installImage,
    wipe: false,
    grubUseUKICmdline: ctx.layout.grubUseUKICmdline ? true : undefined,
  });
}

function features(ctx: Context): Doc {
  const L = ctx.layout;
  return compact({
    rbac: L.legacyFeatureFlags ? true : undefined,
    stableHostname: L.legacyFeatureFlags ? true : undefined,
    apidCheckExtKeyUsage: L.legacyFeatureFlags ? true : undefined,
    diskQuotaSupport: true,
    kubePrism: L.kubernetes === "v1alpha1" ? { enabled: true, port: KUBEPRISM_PORT } : undefined,
    hostDNS: L.hostDNS === "machine.features" ? hostDNS() : undefined,
  });
}

function machine(ctx: Context, role: Role): Doc {
  const L = ctx.layout;
  const o = ctx.options;
  const cp = role === "controlplane";
  const inV1alpha1 = L.kubernetes === "v1alpha1";
  const mirrors = L.registryMirrors === "machine.registries" ? o.registryMirrors : undefined;
  const sysctls = L.sysctls === "machine.sysctls" && o.sysctls && Object.keys(o.sysctls).length > 0 ? o.sysctls : undefined;
  return compact({
    type: role,
    token: ctx.secrets.trustdToken,
    ca: { crt: base64(ctx.secrets.os.crt), key: cp ? base64(ctx.secrets.os.key) : "" },
    certSANs: [...(o.additionalSANs ?? [])],
    kubelet: inV1alpha1
      ? { image: kubeletImage(ctx), defaultRuntimeSeccompProfileEnabled: true, disableManifestsDirectory: true }
      : undefined,
    network: legacyMachineNetwork(ctx, role),
    install: install(ctx),
    sysctls: sysctls ? sortedMap(sysctls) : undefined,
    registries: mirrors
      ? { mirrors: Object.fromEntries(Object.entries(sortedMap(mirrors)).map(([h, endpoints]) => [h, { endpoints }])) }
      : undefined,
    systemDiskEncryption: legacySystemDiskEncryption(ctx),
    features: features(ctx),
    nodeLabels: cp && inV1alpha1 ? { [LABEL_EXCLUDE_FROM_LB]: "" } : undefined,
  });
}

function cni(ctx: Context): Doc | undefined {
  const c = ctx.options.cni;
  if (c === undefined) return undefined;
  return c.name === "custom" ? { name: "custom", urls: [...(c.urls ?? [])] } : { name: c.name };
}

function clusterNetwork(ctx: Context): Doc {
  return {
    ...compact({ cni: cni(ctx) }),
    dnsDomain: ctx.dnsDomain,
    podSubnets: [...ctx.podSubnets],
    serviceSubnets: [...ctx.serviceSubnets],
  };
}

function discovery(): Doc {
  return { enabled: true, registries: { kubernetes: { disabled: true }, service: {} } };
}

function apiServer(ctx: Context): Doc {
  const L = ctx.layout;
  const sans = [...(L.apiServerSANsIncludeEndpoint ? [ctx.endpointHost] : []), ...(ctx.options.additionalSANs ?? [])];
  return compact({
    image: image(APISERVER_IMAGE, ctx.kubernetesVersion),
    certSANs: nonEmpty(sans),
    disablePodSecurityPolicy: L.disablePodSecurityPolicy ? true : undefined,
    admissionControl: [{ name: "PodSecurity", configuration: podSecurityConfiguration() }],
    auditPolicy: auditPolicy(),
  });
}

function cluster(ctx: Context, role: Role): Doc {
  const L = ctx.layout;
  const s = ctx.secrets;
  const cp = role === "controlplane";
  const k8s = L.kubernetes === "v1alpha1";
  const legacyDiscovery = L.discovery === "v1alpha1";
  return compact({
    id: legacyDiscovery ? s.clusterId : undefined,
    secret: legacyDiscovery ? s.clusterSecret : undefined,
    controlPlane: k8s
      ? compact({ endpoint: ctx.endpoint, localAPIServerPort: cp ? ctx.options.localAPIServerPort : undefined })
      : undefined,
    clusterName: k8s ? ctx.clusterName : undefined,
    network: k8s ? clusterNetwork(ctx) : undefined,
    token: s.bootstrapToken,
    aescbcEncryptionSecret: cp && k8s && !s.secretboxEncryptionSecret ? s.aescbcEncryptionSecret : undefined,
    secretboxEncryptionSecret: cp && k8s ? s.secretboxEncryptionSecret : undefined,
    ca: k8s ? { crt: base64(s.k8s.crt), key: cp ? base64(s.k8s.key) : "" } : undefined,
    aggregatorCA: cp && k8s ? { crt: base64(s.k8sAggregator.crt), key: base64(s.k8sAggregator.key) } : undefined,
    serviceAccount: cp && k8s ? { key: base64(s.k8sServiceAccountKey) } : undefined,
    apiServer: cp && k8s ? apiServer(ctx) : undefined,
    controllerManager: cp && k8s ? { image: image(CONTROLLER_MANAGER_IMAGE, ctx.kubernetesVersion) } : undefined,
    proxy: cp && k8s ? { image: image(PROXY_IMAGE, ctx.kubernetesVersion) } : undefined,
    scheduler: cp && k8s ? { image: image(SCHEDULER_IMAGE, ctx.kubernetesVersion) } : undefined,
    discovery: legacyDiscovery ? discovery() : undefined,
    etcd: cp ? { ca: { crt: base64(s.etcd.crt), key: base64(s.etcd.key) } } : undefined,
    allowSchedulingOnControlPlanes: cp && k8s && ctx.options.allowSchedulingOnControlPlanes ? true : undefined,
  });
}

export function v1alpha1Document(ctx: Context, role: Role): Doc {
  return { version: "v1alpha1", debug: false, persist: true, machine: machine(ctx, role), cluster: cluster(ctx, role) };
}
