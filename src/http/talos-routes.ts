import { isIP } from "node:net";
import { Hono, type Context } from "hono";
import type { Logger } from "pino";
import { stringify } from "yaml";
import { z } from "zod";
import { parseMac } from "../boot/mac.js";
import type { MachineStore } from "../store/machines.js";
import type { NodeRole, TalosStore } from "../store/talos.js";
import { installerImage } from "../talos/contracts/index.js";
import { DocumentError, parseDocuments, stringifyDocuments } from "../talos/document.js";
import { GenerateError, generateConfigs, generateOptionsSchema, secretsInputFromBundle, type GenerateOptions } from "../talos/generate.js";
import { makeAdminKubeconfig } from "../talos/kubeconfig.js";
import { applyPatches, parsePatch, PatchError, type Patch } from "../talos/patch.js";
import { generateSecrets } from "../talos/secrets.js";
import { readSecretsYaml, writeSecretsYaml } from "../talos/secrets-yaml.js";
import { makeTalosconfig } from "../talos/talosconfig.js";
import { validateConfig, type Problem } from "../talos/validate.js";
import { kubernetesSupport, parseKubernetesVersion, parseTalosVersion, VersionError, type TalosVersion } from "../talos/version.js";
import { jsonBody, readLimitedText } from "./api-routes.js";
import { ApiError } from "./errors.js";

export interface TalosRouteDeps {
  talos: TalosStore;
  machines: MachineStore;
  log: Logger;
}

export const DEFAULT_INSTALL_DISK = "/dev/sda";
/** A machine config body (YAML): generous, since 1.14 configs run to ~30 documents. */
const MAX_CONFIG_BODY = 1024 * 1024;
const CLUSTER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const roleSchema = z.enum(["CONTROL_PLANE", "WORKER", "CONTROL_PLANE_WORKER"]);

const generateBody = z.object({
  clusterName: z.string().regex(CLUSTER_NAME, { message: "expected a DNS-1123 label (lower-case letters, digits, '-', at most 63)" }),
  endpoint: z.string().optional(),
  nodeRole: roleSchema,
  nodeConfig: z.object({
    hostname: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, { message: "expected a lower-case hostname label" }),
    ipAddress: z.string().optional(),
    gateway: z.string().optional(),
    nameservers: z.array(z.string()).optional(),
    macAddress: z.string().optional(),
    installDisk: z.string().optional(),
  }),
  talosVersion: z.string().optional(),
  kubernetesVersion: z.string().optional(),
  /** Strategic-merge or JSON patches: YAML/JSON text, or objects. */
  patches: z.array(z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())])).optional(),
  /** Generator options beyond the node's (CNI, subnets, sysctls, VIP, encryption, mirrors …). */
  options: generateOptionsSchema.optional(),
});

const validateBody = z.object({
  config: z.string().min(1),
  talosVersion: z.string().optional(),
  mode: z.enum(["metal", "cloud", "container"]).optional(),
});

function problemsError(message: string, problems: readonly Problem[]): ApiError {
  return new ApiError(400, "INVALID_CONFIG", message, { problems: problems.map((p) => ({ path: p.path, message: p.message })) });
}

/** Turns the library's typed errors into 400s that name what was wrong. */
function asApiError(err: unknown): never {
  if (err instanceof GenerateError || err instanceof PatchError || err instanceof VersionError || err instanceof DocumentError) {
    throw new ApiError(400, "INVALID_REQUEST", err.message);
  }
  throw err;
}

function splitAddress(ipAddress: string | undefined): { address: string | null; cidr: string | null } {
  if (!ipAddress) return { address: null, cidr: null };
  const [addr, bits] = ipAddress.split("/");
  if (!addr || isIP(addr) === 0 || (bits !== undefined && !/^\d{1,3}$/.test(bits))) {
    throw new ApiError(400, "VALIDATION_FAILED", `nodeConfig.ipAddress: expected an address (10.1.107.11) or one with a prefix (10.1.107.11/24), got "${ipAddress}"`);
  }
  return { address: addr, cidr: bits === undefined ? null : ipAddress };
}

function wantsYaml(c: Context): boolean {
  return /application\/(x-)?yaml/.test(c.req.header("accept") ?? "");
}

/** The Talos config API under /api/v1/talos: generate, read, replace and validate node configs. */
export function talosRoutes(deps: TalosRouteDeps): Hono {
  const app = new Hono();
  const { talos, log } = deps;

  const contractOf = (version: string | undefined): TalosVersion => {
    try {
      return parseTalosVersion(version);
    } catch (err) {
      return asApiError(err);
    }
  };

  app.post("/configs/generate", async (c) => {
    const body = await jsonBody(c, generateBody);
    let cluster = talos.cluster(body.clusterName);
    const talosVersion = contractOf(body.talosVersion ?? cluster?.talosVersion);
    const { contract } = talosVersion;

    let kubernetesVersion: string;
    try {
      kubernetesVersion = parseKubernetesVersion(body.kubernetesVersion ?? cluster?.kubernetesVersion ?? contract.defaultKubernetesVersion);
    } catch (err) {
      return asApiError(err);
    }
    const support = kubernetesSupport(contract, kubernetesVersion);
    if (!support.supported) throw new ApiError(400, "UNSUPPORTED_KUBERNETES_VERSION", support.message ?? `supported: ${support.range}`, { range: support.range });

    if (!cluster) {
      if (!body.endpoint) throw new ApiError(400, "VALIDATION_FAILED", "endpoint: required when the cluster is first created (https://<vip-or-first-control-plane>:6443)");
      // RSA-4096 runs on the thread pool: DHCP/TFTP/HTTP keep answering meanwhile.
      const secrets = await generateSecrets({ versionContract: contract.version });
      cluster = { name: body.clusterName, endpoint: body.endpoint, talosVersion: talosVersion.version, kubernetesVersion, secretsYaml: writeSecretsYaml(secrets) };
      talos.createCluster(cluster);
      log.info({ cluster: cluster.name, talosVersion: cluster.talosVersion }, "cluster created with a new secrets bundle");
    } else if (body.endpoint && body.endpoint !== cluster.endpoint) {
      throw new ApiError(409, "ENDPOINT_MISMATCH", `cluster ${cluster.name} already has endpoint ${cluster.endpoint}`);
    }

    const node = body.nodeConfig;
    const { address, cidr } = splitAddress(node.ipAddress);
    const mac = node.macAddress === undefined ? null : parseMac(node.macAddress);
    if (node.macAddress !== undefined && !mac) throw new ApiError(400, "INVALID_MAC", `nodeConfig.macAddress: '${node.macAddress}' is not a MAC address`);
    if (cidr && !mac) throw new ApiError(400, "VALIDATION_FAILED", "nodeConfig.macAddress: required with a static ipAddress (it selects the link the address goes on)");

    const role: NodeRole = body.nodeRole === "WORKER" ? "worker" : "controlplane";
    const options: GenerateOptions = {
      ...body.options,
      installDisk: node.installDisk ?? body.options?.installDisk ?? DEFAULT_INSTALL_DISK,
      installImage: body.options?.installImage ?? installerImage(contract, talosVersion.version),
      hostname: node.hostname,
      ...(address ? { additionalSANs: [...new Set([...(body.options?.additionalSANs ?? []), address])] } : {}),
      ...(body.nodeRole === "CONTROL_PLANE_WORKER" ? { allowSchedulingOnControlPlanes: true } : {}),
      ...(cidr
        ? { network: { macAddress: mac!, addresses: [cidr], ...(node.gateway ? { gateway: node.gateway } : {}), ...(node.nameservers ? { nameservers: node.nameservers } : {}) } }
        : {}),
    };
    let configYaml: string;
    let warnings: string[];
    try {
      const bundle = readSecretsYaml(cluster.secretsYaml);
      const generated = generateConfigs({ clusterName: cluster.name, endpoint: cluster.endpoint, kubernetesVersion, contract, secrets: secretsInputFromBundle(bundle), options });
      const patches: Patch[] = (body.patches ?? []).map((p, i) => parsePatch(typeof p === "string" ? p : stringify(p), `patches[${i}]`));
      const docs = applyPatches(role === "worker" ? generated.worker : generated.controlplane, patches, { contract });
      const result = validateConfig(docs, { contract, mode: "metal" });
      if (result.errors.length > 0) throw problemsError("the generated config (with its patches) is invalid", result.errors);
      configYaml = stringifyDocuments(docs);
      warnings = [...generated.warnings, ...result.warnings.map((w) => `${w.path}: ${w.message}`)];
    } catch (err) {
      return asApiError(err);
    }
    const saved = talos.saveNode({ clusterName: cluster.name, role, hostname: node.hostname, mac, address, configYaml });
    log.info({ cluster: cluster.name, nodeId: saved.nodeId, role, hostname: node.hostname, mac }, "node config generated");
    if (wantsYaml(c)) return c.body(configYaml, 200, { "Content-Type": "application/yaml; charset=utf-8", "Cache-Control": "no-store" });
    return c.json({ nodeId: saved.nodeId, clusterName: cluster.name, role: body.nodeRole, hostname: node.hostname, config: configYaml, warnings });
  });

  const nodeOr404 = (c: Context) => {
    const node = talos.node(c.req.param("nodeId") ?? "");
    if (!node) throw new ApiError(404, "NOT_FOUND", `no node config ${c.req.param("nodeId")}`);
    return node;
  };

  app.get("/configs/:nodeId", (c) => {
    const node = nodeOr404(c);
    if (wantsYaml(c)) return c.body(node.configYaml, 200, { "Content-Type": "application/yaml; charset=utf-8", "Cache-Control": "no-store" });
    return c.json({ nodeId: node.nodeId, clusterName: node.clusterName, role: node.role === "worker" ? "WORKER" : "CONTROL_PLANE", hostname: node.hostname, config: node.configYaml });
  });

  /** A YAML body, or JSON `{config}`: validated with the cluster's contract before it replaces anything. */
  const configText = async (c: Context): Promise<{ config: string; talosVersion?: string; mode?: "metal" | "cloud" | "container" }> => {
    if (/json/.test(c.req.header("content-type") ?? "")) return jsonBody(c, validateBody);
    return { config: await readLimitedText(c, MAX_CONFIG_BODY) };
  };

  const validateText = (text: string, version: TalosVersion, mode: "metal" | "cloud" | "container" = "metal") => {
    let docs;
    try {
      docs = parseDocuments(text);
    } catch (err) {
      return { docs: undefined, result: { errors: [{ path: "(document)", message: (err as Error).message }], warnings: [] as Problem[] } };
    }
    return { docs, result: validateConfig(docs, { contract: version.contract, mode }) };
  };

  app.put("/configs/:nodeId", async (c) => {
    const node = nodeOr404(c);
    const body = await configText(c);
    const cluster = talos.cluster(node.clusterName)!;
    const { result } = validateText(body.config, contractOf(cluster.talosVersion), body.mode);
    if (result.errors.length > 0) throw problemsError("the config is invalid; nothing was stored", result.errors);
    const saved = talos.replaceConfig(node.nodeId, body.config)!;
    return c.json({ nodeId: saved.nodeId, clusterName: saved.clusterName, hostname: saved.hostname, warnings: result.warnings });
  });

  app.post("/configs/validate", async (c) => {
    const body = await configText(c);
    const { result } = validateText(body.config, contractOf(body.talosVersion), body.mode);
    // The request was fine whatever the config's verdict: 200 with the verdict.
    return c.json({ valid: result.errors.length === 0, errors: result.errors, warnings: result.warnings });
  });

  const clusterOr404 = (c: Context) => {
    const cluster = talos.cluster(c.req.param("name") ?? "");
    if (!cluster) throw new ApiError(404, "NOT_FOUND", `no cluster ${c.req.param("name")}`);
    return cluster;
  };

  app.get("/clusters/:name/talosconfig", async (c) => {
    const cluster = clusterOr404(c);
    const endpoints = talos.nodes(cluster.name).filter((n) => n.role === "controlplane" && n.address).map((n) => n.address!);
    const text = await makeTalosconfig({ clusterName: cluster.name, endpoints, secrets: readSecretsYaml(cluster.secretsYaml) });
    return c.body(text, 200, { "Content-Type": "application/yaml; charset=utf-8", "Cache-Control": "no-store" });
  });

  app.get("/clusters/:name/kubeconfig", async (c) => {
    const cluster = clusterOr404(c);
    const text = await makeAdminKubeconfig({ clusterName: cluster.name, endpoint: cluster.endpoint, secrets: readSecretsYaml(cluster.secretsYaml) });
    return c.body(text, 200, { "Content-Type": "application/yaml; charset=utf-8", "Cache-Control": "no-store" });
  });

  return app;
}
