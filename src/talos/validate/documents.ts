/**
 * Checks on the multi-document kinds, after their Validate methods in Talos
 * (release-1.14 pkg/machinery/config/types/{k8s,network,cluster,runtime,cri}).
 * Kinds not listed here are still covered by the schema check.
 */
import { documentKind, isV1Alpha1, type ConfigDocument } from "../document.js";
import type { Context } from "./context.js";
import {
  checkCaPair,
  checkCertificate,
  checkEndpoint,
  checkLabels,
  checkSigningKey,
  checkTaints,
  decodeStdBase64,
  endpointProblem,
  isCidr,
  isDns1123Subdomain,
  isDnsName,
  isIpAddress,
  isSubnetFilter,
} from "./formats.js";
import { documentLabel, join, list, mapping, present, str, text, type Report } from "./report.js";

type Check = (doc: Record<string, unknown>, path: (field: string) => string, ctx: Context) => void;

const AUTHORIZER_TYPES = ["Node", "RBAC", "Webhook"];

function issuingCa(ctx: Context, doc: Record<string, unknown>, path: (f: string) => string, required: boolean): void {
  const ca = mapping(doc.issuingCA);
  if (!ca) {
    if (required) ctx.r.error(path("issuingCA"), "required: the CA certificate and key (cert:, key:)");
    return;
  }
  const cert = text(ca.cert);
  const key = text(ca.key);
  if (!cert) ctx.r.error(path("issuingCA.cert"), "required: the CA certificate (PEM)");
  if (!key) ctx.r.error(path("issuingCA.key"), "required: the CA key (PEM)");
  if (cert) checkCaPair(ctx.r, { cert, key, certPath: path("issuingCA.cert"), keyPath: path("issuingCA.key") }, ctx.now);
}

function acceptedCas(ctx: Context, doc: Record<string, unknown>, path: (f: string) => string): void {
  list(doc.acceptedCAs).forEach((pem, i) => {
    if (typeof pem !== "string") ctx.r.error(path(`acceptedCAs[${i}]`), "must be a PEM certificate");
    else checkCertificate(ctx.r, path(`acceptedCAs[${i}]`), pem);
  });
}

function subnets(r: Report, path: string, value: unknown): void {
  const items = list(value);
  if (items.length === 0) r.error(path, "required: at least one subnet (CIDR)");
  if (items.length > 2) r.error(path, "at most two subnets (one IPv4 and one IPv6, for dual stack)");
  let v4 = 0;
  let v6 = 0;
  items.forEach((cidr, i) => {
    if (typeof cidr !== "string" || !isCidr(cidr)) r.error(`${path}[${i}]`, "must be a CIDR such as 10.244.0.0/16");
    else if (cidr.includes(":")) v6++;
    else v4++;
  });
  if (v4 > 1 || v6 > 1) r.error(path, "at most one IPv4 and one IPv6 subnet");
}

const CHECKS: Readonly<Record<string, Check>> = {
  HostnameConfig(doc, path, { r }) {
    const auto = doc.auto;
    const hostname = str(doc.hostname) ?? "";
    if (!present(auto) && hostname === "") r.error(path(""), "needs hostname: or auto: (stable or off)");
    if (present(auto) && auto !== "off" && hostname !== "") {
      r.error(path("auto"), `cannot be "${String(auto)}" while hostname: is set; drop auto: (or set it to off)`);
    }
    if (present(auto) && auto !== "stable" && auto !== "off") r.error(path("auto"), `must be stable or off, not ${JSON.stringify(auto)}`);
    if (hostname !== "") {
      const first = hostname.split(".")[0] ?? "";
      if (hostname.length > 253) r.error(path("hostname"), `the FQDN is ${hostname.length} characters long; at most 253`);
      if (first.length === 0 || first.length > 63) r.error(path("hostname"), `"${first}" must be 1 to 63 characters`);
    }
  },
  KubeClusterConfig(doc, path, { r }) {
    if (!text(doc.clusterName)) r.error(path("clusterName"), "required: the cluster name");
    checkEndpoint(r, path("endpoint"), doc.endpoint);
  },
  KubeNodeConfig(doc, path, { r }) {
    list(mapping(doc.nodeIP)?.validSubnets).forEach((cidr, i) => {
      if (typeof cidr !== "string" || !isSubnetFilter(cidr)) r.error(path(`nodeIP.validSubnets[${i}]`), "must be a CIDR or an address, optionally prefixed with !");
    });
    const labels = mapping(doc.labels);
    if (labels) checkLabels(r, path("labels"), labels);
    const taints = mapping(doc.taints);
    if (taints) checkTaints(r, path("taints"), taints);
  },
  KubeNetworkConfig(doc, path, { r }) {
    if (text(doc.dnsDomain) && !isDnsName(doc.dnsDomain as string)) r.error(path("dnsDomain"), `"${String(doc.dnsDomain)}" is not a valid DNS name (e.g. cluster.local)`);
    subnets(r, path("podSubnets"), doc.podSubnets);
    subnets(r, path("serviceSubnets"), doc.serviceSubnets);
    if (list(doc.podSubnets).length !== list(doc.serviceSubnets).length) {
      r.error(path("serviceSubnets"), "needs as many subnets as podSubnets (one per IP family)");
    }
    for (const [field, max] of [["nodeCIDRMaskSizeIPv4", 32], ["nodeCIDRMaskSizeIPv6", 128]] as const) {
      const v = doc[field];
      if (present(v) && (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > max)) r.error(path(field), `must be between 1 and ${max}`);
    }
  },
  KubeAPIServerCAConfig(doc, path, ctx) {
    issuingCa(ctx, doc, path, false);
    acceptedCas(ctx, doc, path);
    if (ctx.controlPlane && !present(doc.issuingCA)) {
      ctx.r.error(path("issuingCA"), "required on control-plane nodes: kube-apiserver signs with the Kubernetes CA (secrets.yaml certs.k8s)");
    }
    if (ctx.worker && text(mapping(doc.issuingCA)?.key)) ctx.r.error(path("issuingCA.key"), "must be empty on worker nodes: list the certificate in acceptedCAs");
  },
  KubeAggregatorCAConfig(doc, path, ctx) {
    issuingCa(ctx, doc, path, true);
    acceptedCas(ctx, doc, path);
  },
  KubeServiceAccountConfig(doc, path, { r }) {
    const issuer = mapping(doc.issuer);
    const key = text(issuer?.privateKey);
    if (!key) r.error(path("issuer.privateKey"), "required: the service-account signing key (PEM, secrets.yaml certs.k8sserviceaccount.key)");
    else checkSigningKey(r, path("issuer.privateKey"), key);
    if (!text(issuer?.issuerURL)) r.error(path("issuer.issuerURL"), "required: the service-account issuer URL (usually the cluster endpoint)");
    else checkEndpoint(r, path("issuer.issuerURL"), issuer?.issuerURL);
  },
  KubePrismConfig(doc, path, { r }) {
    const port = doc.port;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) r.error(path("port"), "must be a port number between 1 and 65535");
  },
  KubeEtcdEncryptionConfig(doc, path, { r }) {
    const config = mapping(doc.config);
    if (!config || Object.keys(config).length === 0) r.error(path("config"), "required: an EncryptionConfiguration (resources with providers)");
  },
  KubeExternalManifestConfig(doc, path, { r }) {
    const name = str(doc.name) ?? "";
    if (name === "") r.error(path("name"), "required: a name for the manifest");
    else if (!isDns1123Subdomain(name)) r.error(path("name"), `"${name}" must be a DNS subdomain: lowercase letters, digits, "-" and "."`);
    checkEndpoint(r, path("url"), doc.url);
  },
  KubeAuthorizerConfig(doc, path, { r }) {
    if (!text(doc.name)) r.error(path("name"), "required: the authorizer's name");
    const type = doc.type;
    if (typeof type !== "string" || !AUTHORIZER_TYPES.includes(type)) r.error(path("type"), `must be one of ${AUTHORIZER_TYPES.join(", ")}`);
    const webhook = mapping(doc.webhook);
    const hasWebhook = webhook !== undefined && Object.keys(webhook).length > 0;
    if (type === "Webhook" && !hasWebhook) r.error(path("webhook"), "required for the Webhook authorizer type");
    if (type !== "Webhook" && hasWebhook) r.warn(path("webhook"), `ignored: only the Webhook authorizer type takes a webhook configuration`);
  },
  KubeAdmissionControlConfig(doc, path, { r }) {
    if (!text(doc.name)) r.error(path("name"), "required: the admission plugin's name (e.g. PodSecurity)");
  },
  DiscoveryIdentityConfig(doc, path, { r }) {
    if (!text(doc.clusterID)) r.error(path("clusterID"), "required (secrets.yaml cluster.id)");
    const secret = text(doc.clusterSecret);
    if (!secret) r.error(path("clusterSecret"), "required (secrets.yaml cluster.secret)");
    else {
      const decoded = decodeStdBase64(secret);
      if (!decoded || decoded.length !== 32) r.error(path("clusterSecret"), "must be 32 random bytes in standard base64 (it is an AES-256 key)");
    }
  },
  DiscoveryServiceConfig(doc, path, { r }) {
    if (!text(doc.name)) r.error(path("name"), "required");
    const endpoint = text(doc.endpoint);
    if (!endpoint) r.error(path("endpoint"), "required: e.g. https://discovery.talos.dev/");
    else {
      const problem = endpointProblem(endpoint, ["https", "http", "grpc"]);
      if (problem) r.error(path("endpoint"), problem);
    }
  },
  UnattendedInstallConfig(doc, path, { r }) {
    const match = mapping(mapping(doc.provisioning)?.diskSelector)?.match;
    if (!text(match)) r.error(path("provisioning.diskSelector.match"), 'required: a disk selector expression, e.g. disk.dev_path == "/dev/sda"');
    if (!text(mapping(doc.installer)?.image)) {
      r.warn(path("installer.image"), "not set: unless this machine booted from Image Factory assets, installation will fail");
    }
  },
  LinkConfig(doc, path, { r }) {
    if (!text(doc.name)) r.error(path("name"), "required: the link name (e.g. eth0)");
    list(doc.addresses).forEach((a, i) => {
      const address = mapping(a)?.address;
      if (typeof address !== "string" || !isCidr(address) || /^0\.0\.0\.0\/|^::\//.test(address)) {
        r.error(path(`addresses[${i}].address`), "must be an address with its prefix length, e.g. 10.0.0.11/24");
      }
    });
    list(doc.routes).forEach((raw, i) => {
      const route = mapping(raw) ?? {};
      if (text(route.destination) && !isCidr(route.destination as string)) r.error(path(`routes[${i}].destination`), "must be a CIDR");
      for (const f of ["gateway", "source"]) {
        if (text(route[f]) && !isIpAddress(route[f] as string)) r.error(path(`routes[${i}].${f}`), "must be an IP address");
      }
    });
  },
  Layer2VIPConfig(doc, path, { r }) {
    const name = str(doc.name) ?? "";
    if (name === "") r.error(path("name"), "required: the virtual IP address");
    else if (!isIpAddress(name)) r.error(path("name"), `"${name}" must be an IP address (the name is the shared IP)`);
    if (!text(doc.link)) r.error(path("link"), "required: the link that carries the virtual IP (e.g. eth0)");
  },
  RegistryMirrorConfig(doc, path, { r }) {
    if (!text(doc.name)) r.error(path("name"), "required: the registry host (e.g. docker.io)");
    list(doc.endpoints).forEach((raw, i) => {
      const url = mapping(raw)?.url;
      const problem = typeof url === "string" ? endpointProblem(url, ["https", "http"]) : "required: the mirror's URL";
      if (problem) r.error(path(`endpoints[${i}].url`), problem);
    });
  },
  ResolverConfig(doc, path, { r }) {
    const hostDNS = mapping(doc.hostDNS);
    if (hostDNS && hostDNS.enabled !== true) {
      if (hostDNS.forwardKubeDNSToHost === true) r.error(path("hostDNS.forwardKubeDNSToHost"), "requires hostDNS.enabled: true");
      if (hostDNS.resolveMemberNames === true) r.error(path("hostDNS.resolveMemberNames"), "requires hostDNS.enabled: true");
    }
    list(doc.nameservers).forEach((raw, i) => {
      const address = mapping(raw)?.address;
      if (typeof address !== "string" || !isIpAddress(address)) r.error(path(`nameservers[${i}].address`), "must be an IP address");
    });
  },
  SysctlConfig(doc, path, { r }) {
    for (const key of Object.keys(mapping(doc.params) ?? {})) if (key === "") r.error(path("params"), "a sysctl name cannot be empty");
  },
  StaticHostConfig(doc, path, { r }) {
    const name = str(doc.name) ?? "";
    if (!isIpAddress(name)) r.error(path("name"), "must be the IP address the host names resolve to");
    if (list(doc.hostnames).length === 0) r.error(path("hostnames"), "required: at least one host name");
  },
};

/** Runs the per-kind checks and the shared requirement that documents carry apiVersion and kind. */
export function checkDocuments(ctx: Context): void {
  for (const doc of ctx.docs) {
    if (isV1Alpha1(doc)) continue;
    const label = documentLabel(doc);
    if (!text(doc.kind)) {
      ctx.r.error(label || "document", "a document without kind: every document but the v1alpha1 one needs apiVersion and kind");
      continue;
    }
    if (!text(doc.apiVersion)) ctx.r.error(join(label, "apiVersion"), "required (v1alpha1)");
    const check = CHECKS[documentKind(doc)];
    if (check) check(doc as ConfigDocument, (field) => join(label, field), ctx);
  }
}
