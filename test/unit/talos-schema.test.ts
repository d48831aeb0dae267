/**
 * Every generated document against Talos's own JSON schema of its minor
 * version (reference/talos/config.schema.v<minor>.json), as Talos's schema
 * test does: one document at a time, against the `$defs` entry of its kind,
 * `persist` dropped (the schema omits it).
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { genConfig } from "../../src/talos/cli-config.js";
import { CONTRACTS, type Contract } from "../../src/talos/contracts/index.js";
import { documentKey, parseDocuments, type ConfigDocument } from "../../src/talos/document.js";
import { generateConfigs, secretsInputFromBundle, type GenerateOptions } from "../../src/talos/generate.js";
import { createSchemaValidator, type SchemaValidator } from "../../src/talos/schema.js";
import { readSecretsYaml } from "../../src/talos/secrets-yaml.js";
import { haveReference, referenceDir } from "../helpers/reference.js";

const haveSchemas = haveReference("talos", "config.schema.v1.14.json");

const validators = new Map<string, SchemaValidator>();
function validatorFor(version: string): SchemaValidator {
  let v = validators.get(version);
  if (!v) {
    v = createSchemaValidator(JSON.parse(readFileSync(referenceDir("talos", `config.schema.v${version}.json`), "utf8")) as object);
    validators.set(version, v);
  }
  return v;
}

/**
 * Talos's 1.14 schema names the install document's kind `UnattendedInstall`
 * while Talos itself reads and writes `UnattendedInstallConfig` (a slip in
 * the schema generator's annotation). The document is right and the schema's
 * kind is wrong, so the document is validated as a copy with the schema's
 * kind — everything else about it is still checked.
 */
function forSchema(doc: ConfigDocument): ConfigDocument {
  return doc.kind === "UnattendedInstallConfig" ? { ...doc, kind: "UnattendedInstall" } : doc;
}

function problems(c: Contract, docs: ConfigDocument[]): string[] {
  const v = validatorFor(c.version);
  return docs.flatMap((d, i) => v.validateDocument(forSchema(d), i).map((p) => `${documentKey(d)}${p.path}: ${p.message}`));
}

const SECRETS = () => secretsInputFromBundle(readSecretsYaml(readFileSync(referenceDir("talos", "stability", "secrets.yaml"), "utf8")));

/** Option sets that together touch every option the generator has. */
function optionSets(c: Contract): Record<string, GenerateOptions> {
  return {
    none: {},
    everything: {
      additionalSANs: ["lb.example.test", "10.1.107.10"],
      dnsDomain: "k8s.internal",
      installDisk: "/dev/vda",
      installImage: "factory.talos.dev/metal-installer/abc:v1.14.7",
      // 1.12 and 1.13 still accept machine.install.extraKernelArgs (Talos's
      // generator writes them) but their schemas omit the deprecated field,
      // so a schema check of those two contracts cannot include it.
      ...(c.layout.installExtraKernelArgs === "deprecated" ? {} : { installExtraKernelArgs: ["console=ttyS0"] }),
      localAPIServerPort: 7443,
      allowSchedulingOnControlPlanes: true,
      sysctls: { "vm.swappiness": "10", "net.core.somaxconn": "65535" },
      cni: { name: "custom", urls: ["https://cni.example.test/a.yaml", "https://cni.example.test/b.yaml"] },
      podSubnets: ["10.200.0.0/16"],
      serviceSubnets: ["10.201.0.0/16"],
      registryMirrors: { "docker.io": ["https://mirror.example.test"], "ghcr.io": ["https://ghcr.mirror.test"] },
      diskEncryption: { state: { keyType: "tpm" }, ephemeral: { keyType: "static", passphrase: "secret" } },
      kubelet: { image: "registry.example.test/kubelet", version: "1.32.3" },
      vip: { ip: "10.1.107.10" },
      hostname: "cp-1",
      network: { interface: "enp0s18", addresses: ["10.1.107.11/24"], gateway: "10.1.107.1", nameservers: ["10.1.107.2"] },
    },
    byMac: {
      cni: { name: "none" },
      diskEncryption: { state: { keyType: "nodeID" }, ephemeral: { keyType: "kms", kmsEndpoint: "grpc://kms.example.test:4050" } },
      vip: { ip: "fd00::10", link: "eth1" },
      network: { macAddress: "52:54:00:12:34:56", nameservers: ["fd00::53"] },
    },
  };
}

describe.skipIf(!haveSchemas)("generated documents validate against Talos's JSON schema of their own minor", () => {
  for (const c of CONTRACTS) {
    for (const [name, options] of Object.entries(optionSets(c))) {
      it(`${c.version}, options: ${name}, both roles`, () => {
        const out = generateConfigs({ clusterName: "base", endpoint: "https://base:6443", contract: c, secrets: SECRETS(), options });
        for (const role of ["controlplane", "worker"] as const) {
          expect(out[role].length).toBeGreaterThan(0);
          expect(problems(c, out[role]), `${c.version} ${role}`).toEqual([]);
        }
      });
    }
  }

  it("gen config for a new cluster (fresh secrets, default contract 1.14) validates", async () => {
    const dir = mkdtempSync(join(tmpdir(), "talos-schema-"));
    try {
      await genConfig({ clusterName: "fresh", endpoint: "https://10.1.107.10:6443", outputDir: dir });
      const c = CONTRACTS[CONTRACTS.length - 1]!;
      for (const file of ["controlplane.yaml", "worker.yaml"]) {
        const docs = parseDocuments(readFileSync(join(dir, file), "utf8"));
        expect(docs.some((d) => d.kind === "UnattendedInstallConfig"), file).toBe(true);
        expect(problems(c, docs), file).toEqual([]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!haveSchemas)("the schema helper", () => {
  it("picks the $defs entry by kind, and v1alpha1 by version", () => {
    const v = validatorFor("1.14");
    expect(v.definitionFor("v1alpha1")).toBe("v1alpha1.Config");
    expect(v.definitionFor("KubeletConfig")).toBe("k8s.KubeletConfigV1Alpha1");
    expect(v.definitionFor("UnattendedInstall")).toBe("runtime.UnattendedInstallConfigV1Alpha1");
    expect(v.definitionFor("UnattendedInstallConfig")).toBeUndefined();
  });

  it("drops persist but reports unknown fields, wrong types and kinds the minor does not have", () => {
    const v = validatorFor("1.14");
    expect(v.validateDocument({ version: "v1alpha1", persist: true, machine: { type: "worker" } })).toEqual([]);
    expect(v.validateDocument({ version: "v1alpha1", machine: { type: "worker", kubelet: {} } })).toEqual([
      { document: 0, kind: "v1alpha1", path: "/machine", message: 'unknown field "kubelet"' },
    ]);
    const typed = v.validateDocument({ apiVersion: "v1alpha1", kind: "KubePrismConfig", port: "7445" }, 3);
    expect(typed).toHaveLength(1);
    expect(typed[0]).toMatchObject({ document: 3, kind: "KubePrismConfig", path: "/port" });
    expect(v.validateDocument({ apiVersion: "v1alpha1", kind: "NoSuchConfig" })[0]?.message).toBe("kind NoSuchConfig is not in this schema");
    expect(validatorFor("1.11").validateDocument({ apiVersion: "v1alpha1", kind: "HostnameConfig", auto: "stable" })[0]?.message).toMatch(
      /not in this schema/,
    );
  });

  it("checks formats: the v1alpha1 control-plane endpoint must be a URI", () => {
    const v = validatorFor("1.13");
    const doc = (endpoint: string) => ({ version: "v1alpha1", cluster: { controlPlane: { endpoint } } });
    expect(v.validateDocument(doc("https://base:6443"))).toEqual([]);
    expect(v.validateDocument(doc("not a uri"))[0]?.path).toBe("/cluster/controlPlane/endpoint");
  });

  it("each golden validates against its own minor's schema, not a newer one", () => {
    const golden = parseDocuments(readFileSync(referenceDir("talos", "stability", "v1.11", "base-controlplane.yaml"), "utf8"));
    expect(validatorFor("1.11").validate(golden)).toEqual([]);
    const newer = validatorFor("1.13").validate(golden).map((p) => `${p.path}: ${p.message}`);
    expect(newer).toContain('/machine/features: unknown field "rbac"');
  });
});
