/**
 * Fixed values Talos's generator writes (pkg/machinery/constants and the
 * k8s/v1alpha1 default documents). Functions, not shared objects, so callers
 * can never mutate a default in place.
 */
export const KUBELET_IMAGE = "ghcr.io/siderolabs/kubelet";
export const APISERVER_IMAGE = "registry.k8s.io/kube-apiserver";
export const CONTROLLER_MANAGER_IMAGE = "registry.k8s.io/kube-controller-manager";
export const SCHEDULER_IMAGE = "registry.k8s.io/kube-scheduler";
export const PROXY_IMAGE = "registry.k8s.io/kube-proxy";

export const DEFAULT_DNS_DOMAIN = "cluster.local";
export const DEFAULT_IPV4_POD_CIDR = "10.244.0.0/16";
export const DEFAULT_IPV4_SERVICE_CIDR = "10.96.0.0/12";

export const DISCOVERY_SERVICE_ENDPOINT = "https://discovery.talos.dev/";
export const KUBEPRISM_PORT = 7445;
export const FLANNEL_BACKEND = "vxlan";
export const FLANNEL_BACKEND_PORT = 4789;
export const FILESYSTEM_TRIM_INTERVAL = "168h0m0s";

export const LABEL_CONTROL_PLANE = "node-role.kubernetes.io/control-plane";
export const LABEL_EXCLUDE_FROM_LB = "node.kubernetes.io/exclude-from-external-load-balancers";

export function podSecurityConfiguration(): Record<string, unknown> {
  return {
    apiVersion: "pod-security.admission.config.k8s.io/v1alpha1",
    defaults: {
      audit: "restricted",
      "audit-version": "latest",
      enforce: "baseline",
      "enforce-version": "latest",
      warn: "restricted",
      "warn-version": "latest",
    },
    exemptions: { namespaces: ["kube-system"], runtimeClasses: [], usernames: [] },
    kind: "PodSecurityConfiguration",
  };
}

export function auditPolicy(): Record<string, unknown> {
  return { apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [{ level: "Metadata" }] };
}

/** Anonymous access limited to the health endpoints (the kube-apiserver probes need it). */
export function authenticationConfiguration(): Record<string, unknown> {
  return {
    anonymous: { conditions: [{ path: "/livez" }, { path: "/readyz" }, { path: "/healthz" }], enabled: true },
    jwt: [],
  };
}
