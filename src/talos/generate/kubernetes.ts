/**
 * The Kubernetes documents of the 1.14 split (Talos's
 * generateKubernetesUniversalConfigs / generateKubernetesControlplaneConfigs):
 * the node-level ones on every machine, the control-plane ones after them.
 */
import { docOf, image, kubeletImage, nonEmpty, sortedMap, compact, type Context, type Doc, type Role } from "./context.js";
import {
  APISERVER_IMAGE,
  auditPolicy,
  authenticationConfiguration,
  CONTROLLER_MANAGER_IMAGE,
  FLANNEL_BACKEND,
  FLANNEL_BACKEND_PORT,
  KUBEPRISM_PORT,
  LABEL_CONTROL_PLANE,
  LABEL_EXCLUDE_FROM_LB,
  podSecurityConfiguration,
  PROXY_IMAGE,
  SCHEDULER_IMAGE,
} from "./defaults.js";

export function kubernetesNodeDocuments(ctx: Context, role: Role): Doc[] {
  if (ctx.layout.kubernetes !== "documents") return [];
  const cp = role === "controlplane";
  const s = ctx.secrets;
  const labels = cp ? sortedMap({ [LABEL_CONTROL_PLANE]: "", [LABEL_EXCLUDE_FROM_LB]: "" }) : undefined;
  const taints = cp && !ctx.options.allowSchedulingOnControlPlanes ? { [LABEL_CONTROL_PLANE]: "NoSchedule" } : undefined;
  return [
    docOf("KubeClusterConfig", { clusterName: ctx.clusterName, endpoint: ctx.endpoint }),
    docOf("KubeNodeConfig", compact({ nodeIP: {}, labels, taints })),
    docOf("KubeletConfig", { image: kubeletImage(ctx), config: {}, defaultRuntimeSeccompProfileEnabled: true }),
    docOf("KubeNetworkConfig", {
      dnsDomain: ctx.dnsDomain,
      podSubnets: [...ctx.podSubnets],
      serviceSubnets: [...ctx.serviceSubnets],
    }),
    docOf("KubeAPIServerCAConfig", cp ? { issuingCA: { cert: s.k8s.crt, key: s.k8s.key } } : { acceptedCAs: [s.k8s.crt] }),
    docOf("KubePrismConfig", { port: KUBEPRISM_PORT }),
  ];
}

/**
 * etcd-at-rest providers in the order the pre-1.14 kube-apiserver template
 * renders them (secretbox `key2`, then aescbc `key1`), so a cluster moved to
 * this contract still decrypts its secrets. (Talos's generator labels the
 * aescbc key `secretbox`; we keep the provider the legacy path used.)
 */
function etcdEncryptionProviders(ctx: Context): Doc[] {
  const s = ctx.secrets;
  const providers: Doc[] = [];
  if (s.secretboxEncryptionSecret) providers.push({ secretbox: { keys: [{ name: "key2", secret: s.secretboxEncryptionSecret }] } });
  if (s.aescbcEncryptionSecret) providers.push({ aescbc: { keys: [{ name: "key1", secret: s.aescbcEncryptionSecret }] } });
  return providers;
}

export function kubernetesControlPlaneDocuments(ctx: Context, role: Role): Doc[] {
  if (ctx.layout.kubernetes !== "documents" || role !== "controlplane") return [];
  const s = ctx.secrets;
  const o = ctx.options;
  const cni = o.cni?.name ?? "flannel";
  const docs: Doc[] = [
    docOf("KubeAggregatorCAConfig", { issuingCA: { cert: s.k8sAggregator.crt, key: s.k8sAggregator.key } }),
    docOf("KubeAdmissionControlConfig", { name: "PodSecurity", configuration: podSecurityConfiguration() }),
    docOf("KubeAuditPolicyConfig", { configuration: auditPolicy() }),
    docOf("KubeAuthenticationConfig", { configuration: authenticationConfiguration() }),
    docOf("KubeAuthorizerConfig", { name: "node", type: "Node" }),
    docOf("KubeAuthorizerConfig", { name: "rbac", type: "RBAC" }),
    docOf("KubeEtcdEncryptionConfig", {
      config: { resources: [{ providers: etcdEncryptionProviders(ctx), resources: ["secrets"] }] },
    }),
    docOf("KubeServiceAccountConfig", { issuer: { privateKey: s.k8sServiceAccountKey, issuerURL: ctx.endpoint } }),
    docOf(
      "KubeAPIServerConfig",
      compact({
        image: image(APISERVER_IMAGE, ctx.kubernetesVersion),
        apiPort: o.localAPIServerPort,
        certExtraSANs: nonEmpty(o.additionalSANs),
      }),
    ),
    docOf("KubeControllerManagerConfig", { image: image(CONTROLLER_MANAGER_IMAGE, ctx.kubernetesVersion) }),
    docOf("KubeSchedulerConfig", { image: image(SCHEDULER_IMAGE, ctx.kubernetesVersion), config: {} }),
    docOf("KubeProxyConfig", { image: image(PROXY_IMAGE, ctx.kubernetesVersion), config: {} }),
  ];
  if (cni === "flannel") docs.push(docOf("KubeFlannelCNIConfig", { backendType: FLANNEL_BACKEND, backendPort: FLANNEL_BACKEND_PORT }));
  docs.push(docOf("KubeCoreDNSConfig", { enabled: true }));
  if (cni === "custom") {
    // One document per manifest URL; Talos names its single one `custom-cni`.
    (o.cni?.urls ?? []).forEach((url, i) => {
      docs.push(docOf("KubeExternalManifestConfig", { name: i === 0 ? "custom-cni" : `custom-cni-${i + 1}`, url }));
    });
  }
  return docs;
}
