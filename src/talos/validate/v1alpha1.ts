/**
 * Checks on the v1alpha1 document, after Talos's Config.Validate
 * (pkg/machinery/config/types/v1alpha1/v1alpha1_validation.go) plus what a
 * node needs to join at all (tokens, CAs, endpoint). Where a 1.14 document
 * has taken a field over, either place satisfies the requirement.
 */
import { isPlainObject } from "../document.js";
import type { Context } from "./context.js";
import {
  checkBase64Key,
  checkCaPair,
  checkEndpoint,
  checkLabels,
  checkSigningKey,
  checkTaints,
  checkToken,
  decodeEmbeddedPem,
  endpointProblem,
  isCidr,
  isDnsName,
  isIpAddress,
  isIpOrCidr,
  isSubnetFilter,
} from "./formats.js";
import { at, list, mapping, present, str, text } from "./report.js";

/** constants.DefaultClusterSecretSize, and the secretbox/AES-CBC key size Talos generates. */
const KEY_BYTES = 32;

const MACHINE_TYPES = ["controlplane", "worker", "init", "join", ""];

export function checkV1Alpha1(ctx: Context): void {
  const { r, v1 } = ctx;
  if (!v1) {
    r.error("v1alpha1", "the config has no v1alpha1 document (the one with version: v1alpha1, machine: and cluster:); every machine config needs it");
    return;
  }
  if (v1.persist === false) r.error("persist", "must be true (or left out): Talos no longer supports persist: false");
  const machine = mapping(v1.machine);
  if (!machine) {
    r.error("machine", "required: the machine section (type, token, ca)");
    return;
  }
  checkMachineType(ctx, machine);
  checkToken(r, "machine.token", machine.token, "machine token (trustd token, secrets.yaml trustdinfo.token)");
  checkMachineCa(ctx, machine);
  checkInstall(ctx, machine);
  checkFeatures(ctx, machine);
  checkKubelet(ctx, machine);
  checkNetwork(ctx, machine);
  checkMachineLabels(ctx, machine);

  const cluster = mapping(v1.cluster);
  if (!cluster) {
    r.error("cluster", "required: the cluster section (token, CA, endpoint)");
    return;
  }
  checkCluster(ctx, cluster);
}

function checkMachineType(ctx: Context, machine: Record<string, unknown>): void {
  const type = machine.type;
  if (typeof type !== "string" || !MACHINE_TYPES.includes(type)) {
    ctx.r.error("machine.type", `must be controlplane or worker${type === undefined ? "" : `, not ${JSON.stringify(type)}`}`);
  } else if (type === "join" || type === "") {
    ctx.r.warn("machine.type", `use "worker" instead of ${JSON.stringify(type)}`);
  }
}

function checkMachineCa(ctx: Context, machine: Record<string, unknown>): void {
  const { r } = ctx;
  const ca = mapping(machine.ca);
  const accepted = list(machine.acceptedCAs);
  const crt = decodeEmbeddedPem(r, "machine.ca.crt", ca?.crt);
  const key = decodeEmbeddedPem(r, "machine.ca.key", ca?.key);
  if (ctx.controlPlane) {
    if (!text(ca?.crt)) r.error("machine.ca.crt", "required on control-plane nodes: the Talos API CA certificate (secrets.yaml certs.os.crt)");
    if (!text(ca?.key)) r.error("machine.ca.key", "required on control-plane nodes: the Talos API CA key (secrets.yaml certs.os.key)");
  } else if (ctx.worker) {
    if (text(ca?.key)) r.error("machine.ca.key", "must be empty on worker nodes: only control planes hold the Talos API CA key");
    if (!text(ca?.crt) && accepted.length === 0) r.error("machine.ca.crt", "required: the Talos API CA certificate (or machine.acceptedCAs)");
  }
  if (crt !== undefined || key !== undefined) {
    checkCaPair(r, { cert: crt, key, certPath: "machine.ca.crt", keyPath: "machine.ca.key" }, ctx.now);
  }
  accepted.forEach((entry, i) => {
    const pem = decodeEmbeddedPem(r, `machine.acceptedCAs[${i}].crt`, mapping(entry)?.crt);
    if (pem !== undefined) checkCaPair(r, { cert: pem, certPath: `machine.acceptedCAs[${i}].crt`, keyPath: "" }, ctx.now);
  });
}

function checkInstall(ctx: Context, machine: Record<string, unknown>): void {
  const { r } = ctx;
  const install = mapping(machine.install);
  const unattended = ctx.find("UnattendedInstallConfig");
  if (install && text(install.disk) === undefined && !present(install.diskSelector) && ctx.mode === "metal") {
    r.error("machine.install.disk", 'required in metal mode: the disk to install to (e.g. /dev/sda) or machine.install.diskSelector');
  }
  if (!install && ctx.mode === "metal") {
    if (ctx.contract.layout.install === "machine.install") {
      r.error("machine.install", "required in metal mode: install instructions (machine.install.disk, e.g. /dev/sda)");
    } else if (!unattended) {
      // Talos 1.14 no longer requires install instructions; a netbooted node without them never installs.
      r.warn("UnattendedInstallConfig", "metal mode without an UnattendedInstallConfig document: the node will not install Talos to disk");
    }
  }
  if (install && list(install.extraKernelArgs).length > 0 && install.grubUseUKICmdline === true) {
    r.error("machine.install.extraKernelArgs", "cannot be used together with machine.install.grubUseUKICmdline: true (kernel arguments belong in the Image Factory schematic)");
  }
}

function checkFeatures(ctx: Context, machine: Record<string, unknown>): void {
  const { r } = ctx;
  const hostDNS = mapping(at(machine, "features.hostDNS"));
  if (hostDNS && hostDNS.forwardKubeDNSToHost === true && hostDNS.enabled !== true) {
    r.error("machine.features.hostDNS.forwardKubeDNSToHost", "requires machine.features.hostDNS.enabled: true");
  }
  const apiAccess = mapping(at(machine, "features.kubernetesTalosAPIAccess"));
  if (apiAccess?.enabled === true && ctx.worker) {
    r.error("machine.features.kubernetesTalosAPIAccess", "can only be enabled on control-plane nodes");
  }
  const port = at(machine, "features.kubePrism.port");
  if (port !== undefined && (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535)) {
    r.error("machine.features.kubePrism.port", "must be a port number between 1 and 65535");
  }
}

function checkKubelet(ctx: Context, machine: Record<string, unknown>): void {
  list(at(machine, "kubelet.nodeIP.validSubnets")).forEach((cidr, i) => {
    if (typeof cidr !== "string" || !isSubnetFilter(cidr)) {
      ctx.r.error(`machine.kubelet.nodeIP.validSubnets[${i}]`, "must be a CIDR or an address, optionally prefixed with ! (e.g. 10.0.0.0/8)");
    }
  });
}

function checkNetwork(ctx: Context, machine: Record<string, unknown>): void {
  const { r } = ctx;
  list(at(machine, "network.interfaces")).forEach((raw, i) => {
    const path = `machine.network.interfaces[${i}]`;
    const device = mapping(raw);
    if (!device) {
      r.error(path, "must be a mapping with interface: (or deviceSelector:)");
      return;
    }
    if (device.ignore === true) return;
    const hasName = text(device.interface) !== undefined;
    const hasSelector = present(device.deviceSelector);
    if (!hasName && !hasSelector) r.error(path, "needs interface: (a link name such as eth0) or deviceSelector:");
    if (hasName && hasSelector) r.error(path, "interface: and deviceSelector: are mutually exclusive");
    if (hasSelector && isPlainObject(device.deviceSelector) && Object.keys(device.deviceSelector).length === 0) {
      r.error(`${path}.deviceSelector`, "must select something (e.g. hardwareAddr, driver, busPath)");
    }
    if (present(device.cidr) && list(device.addresses).length > 0) r.error(`${path}.cidr`, "cannot be used together with addresses");
    if (typeof device.cidr === "string") {
      if (!isIpOrCidr(device.cidr)) r.error(`${path}.cidr`, `"${device.cidr}" is not an address or CIDR`);
      r.warn(`${path}.cidr`, "deprecated: use addresses");
    }
    list(device.addresses).forEach((a, j) => {
      if (typeof a !== "string" || !isIpOrCidr(a)) r.error(`${path}.addresses[${j}]`, "must be an address in CIDR form, e.g. 10.0.0.11/24");
    });
    list(device.routes).forEach((raw, j) => {
      const route = mapping(raw) ?? {};
      const rp = `${path}.routes[${j}]`;
      if (text(route.network) && !isCidr(route.network as string)) r.error(`${rp}.network`, "must be a CIDR, e.g. 0.0.0.0/0");
      if (text(route.gateway) && !isIpAddress(route.gateway as string)) r.error(`${rp}.gateway`, "must be an IP address");
      if (!text(route.network) && !text(route.gateway)) r.error(rp, "needs network or gateway");
      if (text(route.source) && !isIpAddress(route.source as string)) r.error(`${rp}.source`, "must be an IP address");
    });
    const vip = mapping(device.vip);
    if (vip) {
      if (typeof vip.ip !== "string" || !isIpAddress(vip.ip)) r.error(`${path}.vip.ip`, "must be an IP address (the shared virtual IP)");
      if (ctx.worker) r.error(`${path}.vip`, "a shared virtual IP is only allowed on control-plane nodes");
    }
    list(device.vlans).forEach((rawVlan, j) => {
      const vlan = mapping(rawVlan) ?? {};
      const vp = `${path}.vlans[${j}]`;
      list(vlan.addresses).forEach((a, k) => {
        if (typeof a !== "string" || !isIpOrCidr(a)) r.error(`${vp}.addresses[${k}]`, "must be an address in CIDR form");
      });
      if (present(vlan.vip) && ctx.worker) r.error(`${vp}.vip`, "a shared virtual IP is only allowed on control-plane nodes");
    });
  });
}

function checkMachineLabels(ctx: Context, machine: Record<string, unknown>): void {
  const labels = mapping(machine.nodeLabels);
  if (labels) checkLabels(ctx.r, "machine.nodeLabels", labels);
  const taints = mapping(machine.nodeTaints);
  if (taints) checkTaints(ctx.r, "machine.nodeTaints", taints);
}

function checkCluster(ctx: Context, cluster: Record<string, unknown>): void {
  const { r } = ctx;
  checkToken(r, "cluster.token", cluster.token, "bootstrap token (secrets.yaml secrets.bootstraptoken)");

  const endpoint = at(cluster, "controlPlane.endpoint");
  const kubeCluster = ctx.find("KubeClusterConfig");
  if (present(cluster.controlPlane) || !kubeCluster) {
    if (!present(endpoint) && !kubeCluster) {
      const where = ctx.kubeDocuments ? "KubeClusterConfig.endpoint" : "cluster.controlPlane.endpoint";
      r.error(where, "required: the Kubernetes API endpoint, e.g. https://10.0.0.10:6443");
    } else if (present(cluster.controlPlane)) {
      checkEndpoint(r, "cluster.controlPlane.endpoint", endpoint);
    }
  }

  const network = mapping(cluster.network);
  if (network) checkClusterNetwork(ctx, network);

  checkKubernetesPki(ctx, cluster);
  checkEncryption(ctx, cluster);
  checkDiscovery(ctx, cluster);
  checkManifests(ctx, cluster);
}

function checkClusterNetwork(ctx: Context, network: Record<string, unknown>): void {
  const { r } = ctx;
  if (typeof network.dnsDomain === "string" && network.dnsDomain !== "" && !isDnsName(network.dnsDomain)) {
    r.error("cluster.network.dnsDomain", `"${network.dnsDomain}" is not a valid DNS name (e.g. cluster.local)`);
  }
  for (const field of ["podSubnets", "serviceSubnets"]) {
    list(network[field]).forEach((cidr, i) => {
      if (typeof cidr !== "string" || !isCidr(cidr)) r.error(`cluster.network.${field}[${i}]`, "must be a CIDR such as 10.244.0.0/16");
    });
  }
  const cni = mapping(network.cni);
  if (cni && ctx.controlPlane) {
    const name = cni.name;
    const urls = list(cni.urls);
    if (name === "flannel" || name === "none") {
      if (urls.length > 0) r.error("cluster.network.cni.urls", `must be empty for the "${String(name)}" CNI`);
    } else if (name === "custom") {
      if (urls.length === 0) r.warn("cluster.network.cni.urls", 'should list the manifests of the "custom" CNI');
      urls.forEach((u, i) => {
        const problem = typeof u === "string" ? endpointProblem(u, ["https", "http"]) : "must be a URL";
        if (problem) r.error(`cluster.network.cni.urls[${i}]`, problem);
      });
    } else {
      r.error("cluster.network.cni.name", `must be flannel, custom or none${name === undefined ? "" : `, not ${JSON.stringify(name)}`}`);
    }
  }
}

/** The Kubernetes, aggregator, service-account and etcd keys: control planes hold them, workers must not. */
function checkKubernetesPki(ctx: Context, cluster: Record<string, unknown>): void {
  const { r } = ctx;
  const ca = mapping(cluster.ca);
  const apiCaDoc = ctx.find("KubeAPIServerCAConfig");
  const caCrt = decodeEmbeddedPem(r, "cluster.ca.crt", ca?.crt);
  const caKey = decodeEmbeddedPem(r, "cluster.ca.key", ca?.key);
  if (ctx.controlPlane) {
    if (!apiCaDoc && !text(ca?.crt)) r.error("cluster.ca.crt", "required on control-plane nodes: the Kubernetes CA certificate (secrets.yaml certs.k8s.crt)");
    if (!apiCaDoc && !text(ca?.key)) r.error("cluster.ca.key", "required on control-plane nodes: the Kubernetes CA key (secrets.yaml certs.k8s.key)");
  } else if (ctx.worker) {
    if (text(ca?.key)) r.error("cluster.ca.key", "must be empty on worker nodes: only control planes hold the Kubernetes CA key");
    if (!apiCaDoc && !text(ca?.crt) && list(cluster.acceptedCAs).length === 0) {
      r.error("cluster.ca.crt", "required: the Kubernetes CA certificate (secrets.yaml certs.k8s.crt)");
    }
  }
  if (caCrt !== undefined) checkCaPair(r, { cert: caCrt, key: caKey, certPath: "cluster.ca.crt", keyPath: "cluster.ca.key" }, ctx.now);

  const agg = mapping(cluster.aggregatorCA);
  if (agg) {
    const crt = decodeEmbeddedPem(r, "cluster.aggregatorCA.crt", agg.crt);
    const key = decodeEmbeddedPem(r, "cluster.aggregatorCA.key", agg.key);
    if (ctx.controlPlane && (crt === undefined || key === undefined)) {
      r.error("cluster.aggregatorCA", "needs both crt and key on control-plane nodes (secrets.yaml certs.k8saggregator)");
    }
    if (ctx.worker && key !== undefined) r.error("cluster.aggregatorCA.key", "must be empty on worker nodes");
    if (crt !== undefined) checkCaPair(r, { cert: crt, key, certPath: "cluster.aggregatorCA.crt", keyPath: "cluster.aggregatorCA.key" }, ctx.now);
  }

  const saKey = decodeEmbeddedPem(r, "cluster.serviceAccount.key", at(cluster, "serviceAccount.key"));
  if (saKey !== undefined) {
    if (ctx.worker) r.error("cluster.serviceAccount.key", "must be empty on worker nodes");
    checkSigningKey(r, "cluster.serviceAccount.key", saKey);
  } else if (ctx.controlPlane && !ctx.find("KubeServiceAccountConfig")) {
    r.error("cluster.serviceAccount.key", "required on control-plane nodes: the service-account signing key (secrets.yaml certs.k8sserviceaccount.key)");
  }

  const etcd = mapping(cluster.etcd);
  if (etcd && ctx.worker) {
    r.error("cluster.etcd", "etcd settings are only allowed on control-plane nodes");
  } else if (ctx.controlPlane) {
    const etcdCa = mapping(etcd?.ca);
    const crt = decodeEmbeddedPem(r, "cluster.etcd.ca.crt", etcdCa?.crt);
    const key = decodeEmbeddedPem(r, "cluster.etcd.ca.key", etcdCa?.key);
    if (crt === undefined || key === undefined) r.error("cluster.etcd.ca", "required on control-plane nodes: the etcd CA certificate and key (secrets.yaml certs.etcd)");
    if (crt !== undefined) checkCaPair(r, { cert: crt, key, certPath: "cluster.etcd.ca.crt", keyPath: "cluster.etcd.ca.key" }, ctx.now);
    if (present(etcd?.subnet) && list(etcd?.advertisedSubnets).length > 0) r.error("cluster.etcd.subnet", "cannot be set together with cluster.etcd.advertisedSubnets");
    for (const field of ["advertisedSubnets", "listenSubnets"]) {
      list(etcd?.[field]).forEach((cidr, i) => {
        if (typeof cidr !== "string" || !isSubnetFilter(cidr)) r.error(`cluster.etcd.${field}[${i}]`, "must be a CIDR or an address, optionally prefixed with !");
      });
    }
  }
}

function checkEncryption(ctx: Context, cluster: Record<string, unknown>): void {
  const { r } = ctx;
  const secretbox = cluster.secretboxEncryptionSecret;
  const aescbc = cluster.aescbcEncryptionSecret;
  if (text(secretbox)) checkBase64Key(r, "cluster.secretboxEncryptionSecret", secretbox, KEY_BYTES, "secretbox key");
  if (text(aescbc)) checkBase64Key(r, "cluster.aescbcEncryptionSecret", aescbc, KEY_BYTES, "AES-CBC key");
  if (ctx.worker) {
    if (text(secretbox) || text(aescbc)) r.error(text(secretbox) ? "cluster.secretboxEncryptionSecret" : "cluster.aescbcEncryptionSecret", "must be empty on worker nodes");
    return;
  }
  if (ctx.controlPlane && !text(secretbox) && !text(aescbc) && !ctx.find("KubeEtcdEncryptionConfig")) {
    const where = ctx.kubeDocuments ? "KubeEtcdEncryptionConfig" : "cluster.secretboxEncryptionSecret";
    r.error(where, "required on control-plane nodes: the key kube-apiserver encrypts secrets in etcd with (secrets.yaml secrets.secretboxencryptionsecret)");
  }
}

function checkDiscovery(ctx: Context, cluster: Record<string, unknown>): void {
  const { r } = ctx;
  if (text(cluster.secret)) checkBase64Key(r, "cluster.secret", cluster.secret, KEY_BYTES, "cluster secret");
  const discovery = mapping(cluster.discovery);
  if (!discovery || discovery.enabled !== true) return;
  const service = mapping(at(discovery, "registries.service"));
  if (service?.disabled === true) return;
  const endpoint = str(service?.endpoint);
  if (endpoint !== undefined && endpoint !== "") {
    const problem = endpointProblem(endpoint, ["https", "http", "grpc"]);
    if (problem) r.error("cluster.discovery.registries.service.endpoint", problem);
    else if (!["", "/"].includes(new URL(endpoint).pathname)) r.error("cluster.discovery.registries.service.endpoint", "must not have a path (e.g. https://discovery.talos.dev/)");
  }
  if (!text(cluster.id)) r.error("cluster.id", "required while cluster discovery is enabled (secrets.yaml cluster.id)");
  if (!text(cluster.secret)) r.error("cluster.secret", "required while cluster discovery is enabled (secrets.yaml cluster.secret)");
}

function checkManifests(ctx: Context, cluster: Record<string, unknown>): void {
  const { r } = ctx;
  list(cluster.extraManifests).forEach((u, i) => {
    const problem = typeof u === "string" ? endpointProblem(u, ["https", "http"]) : "must be a URL";
    if (problem) r.error(`cluster.extraManifests[${i}]`, problem);
  });
  const names = new Set<string>();
  list(cluster.inlineManifests).forEach((raw, i) => {
    const name = str(mapping(raw)?.name)?.trim() ?? "";
    if (name === "") r.error(`cluster.inlineManifests[${i}].name`, "required: a name for the manifest");
    else if (names.has(name)) r.error(`cluster.inlineManifests[${i}].name`, `"${name}" is used twice`);
    names.add(name);
  });
}
