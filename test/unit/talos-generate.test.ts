/**
 * Config generation per Talos version contract. The oracle for the defaults
 * is Talos itself: its stability goldens (reference/talos/stability, made by
 * Talos's generator from the fixed secrets.yaml). Where options land follows
 * DESIGN §4, contract by contract (≤ 1.11 / 1.12–1.13 / 1.14).
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { genConfig } from "../../src/talos/cli-config.js";
import {
  CONTRACTS,
  DEFAULT_SCHEMATIC,
  findContract,
  installerImage,
  NEWEST_CONTRACT,
  type Contract,
} from "../../src/talos/contracts/index.js";
import { documentKey, parseDocuments, stringifyDocuments, type ConfigDocument } from "../../src/talos/document.js";
import {
  GenerateError,
  generateConfigs,
  secretsInputFromBundle,
  type GenerateOptions,
  type SecretsInput,
} from "../../src/talos/generate.js";
import { readSecretsYaml } from "../../src/talos/secrets-yaml.js";
import { kubernetesSupport, parseKubernetesVersion, parseTalosVersion, VersionError } from "../../src/talos/version.js";
import { haveReference, referenceDir } from "../helpers/reference.js";

type Json = Record<string, any>;

function contract(minor: number): Contract {
  const c = findContract(1, minor);
  if (!c) throw new Error(`no contract 1.${minor}`);
  return c;
}

const LEGACY = [9, 10, 11]; // single v1alpha1 document
const MULTIDOC = [12, 13]; // v1alpha1 + network/registry documents
const SPLIT = [14]; // the Kubernetes split

/** Stand-in secrets for option tests: the generator copies them, never parses them. */
const FAKE_SECRETS: SecretsInput = {
  clusterId: "cluster-id",
  clusterSecret: "cluster-secret",
  bootstrapToken: "abcdef.0123456789abcdef",
  trustdToken: "ghijkl.0123456789abcdef",
  secretboxEncryptionSecret: "c2VjcmV0Ym94",
  os: { crt: "-----BEGIN CERTIFICATE-----\nOS\n-----END CERTIFICATE-----\n", key: "os-key\n" },
  etcd: { crt: "etcd-crt\n", key: "etcd-key\n" },
  k8s: { crt: "k8s-crt\n", key: "k8s-key\n" },
  k8sAggregator: { crt: "agg-crt\n", key: "agg-key\n" },
  k8sServiceAccountKey: "sa-key\n",
};

function gen(minor: number, options: GenerateOptions = {}, kubernetesVersion = "1.32.4") {
  return generateConfigs({
    clusterName: "c1",
    endpoint: "https://api.example.test:6443",
    kubernetesVersion,
    contract: contract(minor),
    secrets: FAKE_SECRETS,
    options,
  });
}

function v1(docs: ConfigDocument[]): Json {
  const d = docs[0] as Json;
  expect(d.version).toBe("v1alpha1");
  return d;
}

function docsOf(docs: ConfigDocument[], kind: string): Json[] {
  return docs.filter((d) => d.kind === kind) as Json[];
}

function one(docs: ConfigDocument[], kind: string): Json {
  const found = docsOf(docs, kind);
  expect(found, `exactly one ${kind} in ${docs.map(documentKey).join(", ")}`).toHaveLength(1);
  return found[0]!;
}

function kinds(docs: ConfigDocument[]): string[] {
  return docs.map(documentKey);
}

const haveGoldens = haveReference("talos", "stability");

describe.skipIf(!haveGoldens)("golden: Talos's stability configs (base, https://base:6443, Kubernetes 1.28.0, no options)", () => {
  const secrets = () =>
    secretsInputFromBundle(readSecretsYaml(readFileSync(referenceDir("talos", "stability", "secrets.yaml"), "utf8")));
  const golden = (c: Contract, role: string) =>
    parseDocuments(readFileSync(referenceDir("talos", "stability", `v${c.version}`, `base-${role}.yaml`), "utf8"));

  it("covers every contract we support, and every golden has a contract", () => {
    expect(CONTRACTS.map((c) => c.version)).toEqual(["1.9", "1.10", "1.11", "1.12", "1.13", "1.14"]);
    const goldenVersions = readdirSync(referenceDir("talos", "stability"), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name.replace(/^v/, ""));
    expect(goldenVersions.sort()).toEqual(CONTRACTS.map((c) => c.version).sort());
  });

  for (const c of CONTRACTS) {
    for (const role of ["controlplane", "worker"] as const) {
      it(`${c.version} ${role}: same documents in the same order, each semantically equal`, () => {
        const out = generateConfigs({ clusterName: "base", endpoint: "https://base:6443", kubernetesVersion: "1.28.0", contract: c, secrets: secrets() });
        const want = golden(c, role);
        const got = out[role];
        expect(kinds(got)).toEqual(kinds(want));
        const byKey = new Map(want.map((d) => [documentKey(d), d]));
        for (const d of got) expect(d, documentKey(d)).toEqual(byKey.get(documentKey(d)));
        // The YAML text reads back to the same documents.
        expect(parseDocuments(stringifyDocuments(got))).toEqual(want);
      });
    }
  }

  it("writes YAML in talosctl's layout (the worker goldens byte for byte)", () => {
    for (const c of CONTRACTS) {
      const out = generateConfigs({ clusterName: "base", endpoint: "https://base:6443", kubernetesVersion: "1.28.0", contract: c, secrets: secrets() });
      const text = readFileSync(referenceDir("talos", "stability", `v${c.version}`, "base-worker.yaml"), "utf8");
      expect(stringifyDocuments(out.worker), c.version).toBe(text);
    }
  });
});

describe.skipIf(!haveGoldens)("golden: gen config (CLI) = the generator's output + default install disk and installer", () => {
  const secretsPath = () => referenceDir("talos", "stability", "secrets.yaml");

  for (const c of CONTRACTS) {
    it(`${c.version}: controlplane.yaml and worker.yaml; talosconfig; all 0600`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "talos-gen-config-"));
      try {
        await genConfig({
          clusterName: "base",
          endpoint: "https://base:6443",
          outputDir: dir,
          withSecrets: secretsPath(),
          talosVersion: c.version,
          kubernetesVersion: "1.28.0",
        });
        const image = installerImage(c, c.newestPatch);
        for (const role of ["controlplane", "worker"] as const) {
          const want = parseDocuments(readFileSync(referenceDir("talos", "stability", `v${c.version}`, `base-${role}.yaml`), "utf8"));
          if (c.layout.install === "machine.install") {
            const install = (want[0] as Json).machine.install;
            (want[0] as Json).machine.install = { disk: "/dev/sda", image, ...install };
          } else {
            const at = want.findIndex((d) => d.kind === "DiscoveryIdentityConfig") + 1;
            want.splice(at, 0, {
              apiVersion: "v1alpha1",
              kind: "UnattendedInstallConfig",
              installer: { image },
              provisioning: { diskSelector: { match: 'disk.dev_path == "/dev/sda"' }, wipe: false },
            });
          }
          const got = parseDocuments(readFileSync(join(dir, `${role}.yaml`), "utf8"));
          expect(kinds(got)).toEqual(kinds(want));
          expect(got).toEqual(want);
        }
        const talosconfig = parseDocuments(readFileSync(join(dir, "talosconfig"), "utf8"))[0] as Json;
        expect(talosconfig.context).toBe("base");
        expect(Object.keys(talosconfig.contexts)).toEqual(["base"]);
        for (const f of ["controlplane.yaml", "worker.yaml", "talosconfig"]) {
          expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o600);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("refuses to overwrite without --force, writing nothing; overwrites with it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "talos-gen-config-"));
    try {
      writeFileSync(join(dir, "worker.yaml"), "keep me\n");
      const args = { clusterName: "base", endpoint: "https://base:6443", outputDir: dir, withSecrets: secretsPath() };
      await expect(genConfig(args)).rejects.toThrow(/worker\.yaml" already exists, use --force/);
      expect(readFileSync(join(dir, "worker.yaml"), "utf8")).toBe("keep me\n");
      expect(() => statSync(join(dir, "controlplane.yaml"))).toThrow();
      await genConfig({ ...args, force: true });
      expect(parseDocuments(readFileSync(join(dir, "worker.yaml"), "utf8"))[0]).toMatchObject({ machine: { type: "worker" } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("applies --config-patch to both roles and the role patches to their own; a bad patch writes nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "talos-gen-config-"));
    try {
      const patchFile = join(dir, "hostname.yaml");
      writeFileSync(patchFile, "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: node-a\n$patch: delete\n");
      const base = { clusterName: "base", endpoint: "https://base:6443", withSecrets: secretsPath(), talosVersion: "1.13" };
      const out = join(dir, "out");
      await genConfig({
        ...base,
        outputDir: out,
        configPatch: [`@${patchFile}`, "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: node-a\n"],
        configPatchWorker: ["machine:\n  sysctls:\n    vm.swappiness: \"10\"\n"],
        additionalSANs: ["10.0.0.5"],
        registryMirrors: ["docker.io=https://mirror.example.test", "docker.io=https://mirror2.example.test"],
      });
      const cp = parseDocuments(readFileSync(join(out, "controlplane.yaml"), "utf8"));
      const worker = parseDocuments(readFileSync(join(out, "worker.yaml"), "utf8"));
      expect(one(cp, "HostnameConfig")).toEqual({ apiVersion: "v1alpha1", kind: "HostnameConfig", hostname: "node-a" });
      expect(one(worker, "HostnameConfig")).toEqual({ apiVersion: "v1alpha1", kind: "HostnameConfig", hostname: "node-a" });
      expect(v1(worker).machine.sysctls).toEqual({ "vm.swappiness": "10" });
      expect(v1(cp).machine.sysctls).toBeUndefined();
      expect(v1(cp).cluster.apiServer.certSANs).toEqual(["10.0.0.5"]);
      expect(one(cp, "RegistryMirrorConfig").endpoints).toEqual([
        { url: "https://mirror.example.test" },
        { url: "https://mirror2.example.test" },
      ]);

      const bad = join(dir, "bad");
      await expect(genConfig({ ...base, outputDir: bad, configPatch: ["- op: add\n  path: /machine/x\n  value: 1\n"] })).rejects.toThrow(
        /JSON patch|single-document/,
      );
      expect(() => statSync(join(bad, "controlplane.yaml"))).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Talos versions and contracts", () => {
  it("accepts a full version with or without v, and a minor meaning its newest known patch", () => {
    expect(parseTalosVersion("1.14.7")).toMatchObject({ version: "1.14.7", contract: { version: "1.14" } });
    expect(parseTalosVersion("v1.12.3")).toMatchObject({ version: "1.12.3", contract: { version: "1.12" } });
    expect(parseTalosVersion("1.11")).toMatchObject({ version: contract(11).newestPatch, contract: { version: "1.11" } });
    expect(parseTalosVersion("v1.9")).toMatchObject({ version: "1.9.6" });
    expect(parseTalosVersion("1.14.0-rc.1").version).toBe("1.14.0-rc.1");
  });

  it("defaults to the newest contract's newest patch", () => {
    expect(NEWEST_CONTRACT.version).toBe("1.14");
    expect(parseTalosVersion()).toEqual({ version: NEWEST_CONTRACT.newestPatch, contract: NEWEST_CONTRACT });
    expect(parseTalosVersion("")).toEqual(parseTalosVersion());
  });

  it("refuses unsupported minors naming the supported ones, and nonsense", () => {
    expect(() => parseTalosVersion("1.8.3")).toThrow(/Talos 1\.8 is not supported: supported versions are 1\.9, 1\.10, 1\.11, 1\.12, 1\.13, 1\.14/);
    expect(() => parseTalosVersion("1.15")).toThrow(VersionError);
    expect(() => parseTalosVersion("latest")).toThrow(/invalid Talos version/);
    expect(() => parseTalosVersion("1.14.7.1")).toThrow(VersionError);
  });

  it("knows each contract's default Kubernetes version and newest patch (DESIGN §4)", () => {
    expect(CONTRACTS.map((c) => [c.version, c.newestPatch, c.defaultKubernetesVersion])).toEqual([
      ["1.9", "1.9.6", "1.32.4"],
      ["1.10", "1.10.9", "1.33.6"],
      ["1.11", "1.11.6", "1.34.1"],
      ["1.12", "1.12.11", "1.35.4"],
      ["1.13", "1.13.10", "1.36.3"],
      ["1.14", "1.14.7", "1.37.0"],
    ]);
  });

  it("supports the six Kubernetes minors ending at the default one", () => {
    for (const c of CONTRACTS) {
      const [, minor] = c.defaultKubernetesVersion.split(".").map(Number);
      expect(c.kubernetes, c.version).toEqual({ oldestMinor: `1.${minor! - 5}`, newestMinor: `1.${minor}` });
      expect(kubernetesSupport(c, c.defaultKubernetesVersion).supported).toBe(true);
      expect(kubernetesSupport(c, `1.${minor! - 5}.0`).supported).toBe(true);
      expect(kubernetesSupport(c, `1.${minor! - 6}.9`).supported).toBe(false);
      expect(kubernetesSupport(c, `v1.${minor! + 1}.0`).supported).toBe(false);
    }
  });

  it("parses Kubernetes versions strictly", () => {
    expect(parseKubernetesVersion("v1.32.4")).toBe("1.32.4");
    expect(parseKubernetesVersion("1.37.0-rc.0")).toBe("1.37.0-rc.0");
    expect(() => parseKubernetesVersion("1.32")).toThrow(/full version/);
  });

  it("picks the installer image per contract (release ≤ 1.13, Image Factory metal-installer from 1.14)", () => {
    expect(installerImage(contract(9), "1.9.6")).toBe("ghcr.io/siderolabs/installer:v1.9.6");
    expect(installerImage(contract(13), "v1.13.10")).toBe("ghcr.io/siderolabs/installer:v1.13.10");
    expect(installerImage(contract(14), "1.14.7")).toBe(`factory.talos.dev/metal-installer/${DEFAULT_SCHEMATIC}:v1.14.7`);
    expect(installerImage(contract(9), "1.9.6", { schematic: "abc" })).toBe("factory.talos.dev/installer/abc:v1.9.6");
    expect(installerImage(contract(10), "1.10.9", { schematic: "abc" })).toBe("factory.talos.dev/metal-installer/abc:v1.10.9");
    expect(installerImage(contract(14), "1.14.7", { schematic: "abc", factory: "factory.internal" })).toBe(
      "factory.internal/metal-installer/abc:v1.14.7",
    );
  });
});

describe("Kubernetes version", () => {
  it("defaults to the contract's default", () => {
    for (const c of CONTRACTS) {
      const out = generateConfigs({ clusterName: "c1", endpoint: "https://a:6443", contract: c, secrets: FAKE_SECRETS });
      const kubelet = c.layout.kubernetes === "v1alpha1" ? v1(out.worker).machine.kubelet.image : one(out.worker, "KubeletConfig").image;
      expect(kubelet).toBe(`ghcr.io/siderolabs/kubelet:v${c.defaultKubernetesVersion}`);
      expect(out.warnings).toEqual([]);
    }
  });

  it("warns, naming the range, outside the supported minors (Talos's generator still accepts it)", () => {
    const out = gen(14, {}, "1.28.0");
    expect(out.warnings).toEqual(["Kubernetes 1.28.0 is outside the range Talos 1.14 supports (Kubernetes 1.32 to 1.37)"]);
    expect(one(out.controlplane, "KubeAPIServerConfig").image).toBe("registry.k8s.io/kube-apiserver:v1.28.0");
    expect(gen(9, {}, "1.32.4").warnings).toEqual([]);
    expect(gen(9, {}, "1.33.0").warnings[0]).toMatch(/1\.27 to 1\.32/);
  });

  it("refuses a malformed version with the field named", () => {
    expect(() => gen(14, {}, "1.32")).toThrow(GenerateError);
    expect(() => gen(14, {}, "1.32")).toThrow(/^kubernetesVersion: /);
  });
});

describe("input errors name the field", () => {
  it("endpoint must be an https URL", () => {
    for (const endpoint of ["base:6443", "http://base:6443", "https://", "10.0.0.1"]) {
      expect(() => generateConfigs({ clusterName: "c", endpoint, contract: NEWEST_CONTRACT, secrets: FAKE_SECRETS }), endpoint).toThrow(
        /^endpoint: /,
      );
    }
  });

  it("options are validated", () => {
    expect(() => gen(14, { podSubnets: ["10.0.0.0"] })).toThrow(/^options\.podSubnets\.0: expected an address with a prefix length/);
    expect(() => gen(14, { cni: { name: "custom" } })).toThrow(/^options\.cni\.urls: a custom CNI needs urls/);
    expect(() => gen(14, { diskEncryption: { state: { keyType: "static" } } })).toThrow(/passphrase/);
    expect(() => gen(14, { installDisk: "sda" })).toThrow(/^options\.installDisk/);
    expect(() => gen(14, { hostname: "bad_name" })).toThrow(/^options\.hostname/);
    expect(() => gen(14, { unknown: 1 } as GenerateOptions)).toThrow(/^options/);
  });

  it("a VIP needs a link", () => {
    for (const minor of [11, 14]) expect(() => gen(minor, { vip: { ip: "10.0.0.100" } })).toThrow(/^vip\.link: /);
  });
});

describe("where each option lands, per contract (DESIGN §4)", () => {
  it("registry mirrors: machine.registries ≤ 1.11, one RegistryMirrorConfig per host (sorted) from 1.12", () => {
    const registryMirrors = { "quay.io": ["https://q.mirror.test"], "docker.io": ["https://d1.mirror.test", "https://d2.mirror.test"] };
    for (const minor of LEGACY) {
      const out = gen(minor, { registryMirrors });
      for (const docs of [out.controlplane, out.worker]) {
        expect(v1(docs).machine.registries).toEqual({
          mirrors: { "docker.io": { endpoints: ["https://d1.mirror.test", "https://d2.mirror.test"] }, "quay.io": { endpoints: ["https://q.mirror.test"] } },
        });
        expect(docsOf(docs, "RegistryMirrorConfig")).toEqual([]);
      }
    }
    for (const minor of [...MULTIDOC, ...SPLIT]) {
      const out = gen(minor, { registryMirrors });
      for (const docs of [out.controlplane, out.worker]) {
        expect(v1(docs).machine.registries).toBeUndefined();
        expect(docsOf(docs, "RegistryMirrorConfig")).toEqual([
          { apiVersion: "v1alpha1", kind: "RegistryMirrorConfig", name: "docker.io", endpoints: [{ url: "https://d1.mirror.test" }, { url: "https://d2.mirror.test" }] },
          { apiVersion: "v1alpha1", kind: "RegistryMirrorConfig", name: "quay.io", endpoints: [{ url: "https://q.mirror.test" }] },
        ]);
      }
    }
  });

  it("hostname: machine.network.hostname ≤ 1.11, HostnameConfig.hostname without auto from 1.12", () => {
    for (const minor of LEGACY) {
      const out = gen(minor, { hostname: "cp-1" });
      expect(v1(out.controlplane).machine.network).toEqual({ hostname: "cp-1" });
      expect(docsOf(out.controlplane, "HostnameConfig")).toEqual([]);
    }
    for (const minor of [...MULTIDOC, ...SPLIT]) {
      const out = gen(minor, { hostname: "cp-1" });
      expect(one(out.controlplane, "HostnameConfig")).toEqual({ apiVersion: "v1alpha1", kind: "HostnameConfig", hostname: "cp-1" });
      expect(v1(out.controlplane).machine.network?.hostname).toBeUndefined();
      // Without a hostname the document carries auto: stable.
      expect(one(gen(minor).worker, "HostnameConfig")).toEqual({ apiVersion: "v1alpha1", kind: "HostnameConfig", auto: "stable" });
    }
  });

  const network = { interface: "enp0s18", addresses: ["10.1.107.11/24"], gateway: "10.1.107.1", nameservers: ["10.1.107.2", "1.1.1.1"] };

  it("static network and VIP: machine.network.interfaces[] (vip) ≤ 1.11; the VIP on control planes only", () => {
    for (const minor of LEGACY) {
      const out = gen(minor, { network, vip: { ip: "10.1.107.10" } });
      expect(v1(out.controlplane).machine.network).toEqual({
        interfaces: [
          {
            interface: "enp0s18",
            addresses: ["10.1.107.11/24"],
            routes: [{ network: "0.0.0.0/0", gateway: "10.1.107.1" }],
            vip: { ip: "10.1.107.10" },
          },
        ],
        nameservers: ["10.1.107.2", "1.1.1.1"],
      });
      expect(v1(out.worker).machine.network.interfaces[0].vip).toBeUndefined();
      expect(v1(out.worker).machine.network.interfaces[0].interface).toBe("enp0s18");
    }
    // A MAC selects the device; a VIP on another link is its own DHCP device.
    const out = gen(11, { network: { macAddress: "52-54-00-AA-BB-CC" }, vip: { ip: "10.0.0.9", link: "eth1" } });
    expect(v1(out.controlplane).machine.network.interfaces).toEqual([
      { deviceSelector: { hardwareAddr: "52:54:00:aa:bb:cc" }, dhcp: true },
      { interface: "eth1", dhcp: true, vip: { ip: "10.0.0.9" } },
    ]);
  });

  it("static network and VIP: LinkConfig / Layer2VIPConfig{name: ip, link} / ResolverConfig from 1.12", () => {
    for (const minor of [...MULTIDOC, ...SPLIT]) {
      const out = gen(minor, { network, vip: { ip: "10.1.107.10" } });
      const cp = out.controlplane;
      expect(one(cp, "LinkConfig")).toEqual({
        apiVersion: "v1alpha1",
        kind: "LinkConfig",
        name: "enp0s18",
        addresses: [{ address: "10.1.107.11/24" }],
        routes: [{ gateway: "10.1.107.1" }],
      });
      expect(one(cp, "Layer2VIPConfig")).toEqual({ apiVersion: "v1alpha1", kind: "Layer2VIPConfig", name: "10.1.107.10", link: "enp0s18" });
      expect(docsOf(out.worker, "Layer2VIPConfig")).toEqual([]);
      expect(one(out.worker, "LinkConfig").name).toBe("enp0s18");
      expect(one(cp, "ResolverConfig").nameservers).toEqual([{ address: "10.1.107.2" }, { address: "1.1.1.1" }]);
      const machineNetwork = v1(cp).machine.network;
      expect(machineNetwork === undefined || Object.keys(machineNetwork).length === 0).toBe(true);
    }
    // 1.14 keeps one ResolverConfig: the nameservers join host DNS.
    expect(one(gen(14, { network }).worker, "ResolverConfig")).toEqual({
      apiVersion: "v1alpha1",
      kind: "ResolverConfig",
      nameservers: [{ address: "10.1.107.2" }, { address: "1.1.1.1" }],
      hostDNS: { enabled: true, forwardKubeDNSToHost: true },
    });
    // A MAC-selected link gets an alias the other documents refer to.
    const byMac = gen(12, { network: { macAddress: "52:54:00:AA:BB:CC", addresses: ["10.0.0.5/24"] }, vip: { ip: "10.0.0.9" } });
    expect(one(byMac.controlplane, "LinkAliasConfig")).toEqual({
      apiVersion: "v1alpha1",
      kind: "LinkAliasConfig",
      name: "net0",
      selector: { match: 'mac(link.permanent_addr) == "52:54:00:aa:bb:cc"' },
    });
    expect(one(byMac.controlplane, "LinkConfig").name).toBe("net0");
    expect(one(byMac.controlplane, "Layer2VIPConfig").link).toBe("net0");
  });

  it("disk encryption: machine.systemDiskEncryption ≤ 1.10, VolumeConfig STATE/EPHEMERAL .encryption from 1.11", () => {
    const diskEncryption = { state: { keyType: "tpm" as const }, ephemeral: { keyType: "static" as const, passphrase: "p4ss" } };
    for (const minor of [9, 10]) {
      const out = gen(minor, { diskEncryption });
      expect(v1(out.worker).machine.systemDiskEncryption).toEqual({
        state: { provider: "luks2", keys: [{ slot: 0, tpm: {} }] },
        ephemeral: { provider: "luks2", keys: [{ static: { passphrase: "p4ss" }, slot: 0 }] },
      });
      expect(docsOf(out.worker, "VolumeConfig")).toEqual([]);
    }
    for (const minor of [11, ...MULTIDOC]) {
      const out = gen(minor, { diskEncryption });
      expect(v1(out.worker).machine.systemDiskEncryption).toBeUndefined();
      expect(docsOf(out.worker, "VolumeConfig")).toEqual([
        { apiVersion: "v1alpha1", kind: "VolumeConfig", name: "STATE", encryption: { provider: "luks2", keys: [{ slot: 0, tpm: {} }] } },
        {
          apiVersion: "v1alpha1",
          kind: "VolumeConfig",
          name: "EPHEMERAL",
          encryption: { provider: "luks2", keys: [{ slot: 0, static: { passphrase: "p4ss" } }] },
        },
      ]);
    }
    // 1.14: merged into the EPHEMERAL document the generator writes anyway.
    const out = gen(14, { diskEncryption: { ephemeral: { keyType: "nodeID" } } });
    expect(docsOf(out.controlplane, "VolumeConfig")).toEqual([
      { apiVersion: "v1alpha1", kind: "VolumeConfig", name: "EPHEMERAL", encryption: { provider: "luks2", keys: [{ slot: 0, nodeID: {} }] }, mount: { secure: true } },
    ]);
    expect(one(gen(13, { diskEncryption: { state: { keyType: "kms", kmsEndpoint: "grpc://kms.test:4050" } } }).worker, "VolumeConfig").encryption.keys).toEqual([
      { slot: 0, kms: { endpoint: "grpc://kms.test:4050" } },
    ]);
  });

  it("kubelet image and version: machine.kubelet.image ≤ 1.13, KubeletConfig.image in 1.14", () => {
    for (const minor of [...LEGACY, ...MULTIDOC]) {
      expect(v1(gen(minor, { kubelet: { image: "registry.test/kubelet" } }).worker).machine.kubelet.image).toBe("registry.test/kubelet:v1.32.4");
      expect(v1(gen(minor, { kubelet: { version: "1.31.2" } }).controlplane).machine.kubelet.image).toBe("ghcr.io/siderolabs/kubelet:v1.31.2");
    }
    const out = gen(14, { kubelet: { image: "registry.test/kubelet:v1.32.9" } });
    expect(one(out.worker, "KubeletConfig").image).toBe("registry.test/kubelet:v1.32.9");
    expect(v1(out.worker).machine.kubelet).toBeUndefined();
  });

  it("sysctls: machine.sysctls ≤ 1.13, a SysctlConfig document in 1.14", () => {
    const sysctls = { "vm.swappiness": "10", "net.core.somaxconn": "65535" };
    for (const minor of [...LEGACY, ...MULTIDOC]) {
      const out = gen(minor, { sysctls });
      expect(Object.keys(v1(out.worker).machine.sysctls)).toEqual(["net.core.somaxconn", "vm.swappiness"]);
      expect(docsOf(out.worker, "SysctlConfig")).toEqual([]);
    }
    const out = gen(14, { sysctls });
    expect(one(out.worker, "SysctlConfig")).toEqual({ apiVersion: "v1alpha1", kind: "SysctlConfig", params: { "net.core.somaxconn": "65535", "vm.swappiness": "10" } });
    expect(v1(out.worker).machine.sysctls).toBeUndefined();
  });

  it("custom CNI: cluster.network.cni ≤ 1.13; one KubeExternalManifestConfig per URL and no Flannel in 1.14 (control plane)", () => {
    const cni = { name: "custom" as const, urls: ["https://cni.test/a.yaml", "https://cni.test/b.yaml"] };
    for (const minor of [...LEGACY, ...MULTIDOC]) {
      const out = gen(minor, { cni });
      for (const docs of [out.controlplane, out.worker]) {
        expect(v1(docs).cluster.network.cni).toEqual({ name: "custom", urls: cni.urls });
      }
    }
    const out = gen(14, { cni });
    expect(docsOf(out.controlplane, "KubeFlannelCNIConfig")).toEqual([]);
    const manifests = docsOf(out.controlplane, "KubeExternalManifestConfig");
    expect(manifests.map((m) => m.url)).toEqual(cni.urls);
    expect(new Set(manifests.map((m) => m.name)).size).toBe(2);
    expect(manifests[0]!.name).toBe("custom-cni");
    expect(docsOf(out.worker, "KubeExternalManifestConfig")).toEqual([]);
  });

  it("CNI none: cni.name none ≤ 1.13; neither Flannel nor manifests in 1.14", () => {
    for (const minor of [...LEGACY, ...MULTIDOC]) expect(v1(gen(minor, { cni: { name: "none" } }).controlplane).cluster.network.cni).toEqual({ name: "none" });
    const cp = gen(14, { cni: { name: "none" } }).controlplane;
    expect(docsOf(cp, "KubeFlannelCNIConfig")).toEqual([]);
    expect(docsOf(cp, "KubeExternalManifestConfig")).toEqual([]);
    expect(one(gen(14).controlplane, "KubeFlannelCNIConfig")).toMatchObject({ backendType: "vxlan", backendPort: 4789 });
  });

  it("additional SANs: machine.certSANs everywhere; API server SANs with the endpoint host ≤ 1.11, without after; certExtraSANs in 1.14", () => {
    const additionalSANs = ["lb.example.test", "10.0.0.5"];
    for (const minor of LEGACY) {
      const out = gen(minor, { additionalSANs });
      expect(v1(out.worker).machine.certSANs).toEqual(additionalSANs);
      expect(v1(out.controlplane).cluster.apiServer.certSANs).toEqual(["api.example.test", ...additionalSANs]);
    }
    for (const minor of MULTIDOC) expect(v1(gen(minor, { additionalSANs }).controlplane).cluster.apiServer.certSANs).toEqual(additionalSANs);
    const out = gen(14, { additionalSANs });
    expect(v1(out.controlplane).machine.certSANs).toEqual(additionalSANs);
    expect(one(out.controlplane, "KubeAPIServerConfig").certExtraSANs).toEqual(additionalSANs);
  });

  it("scheduling on control planes: cluster.allowSchedulingOnControlPlanes ≤ 1.13, no NoSchedule taint in 1.14", () => {
    for (const minor of [...LEGACY, ...MULTIDOC]) {
      expect(v1(gen(minor, { allowSchedulingOnControlPlanes: true }).controlplane).cluster.allowSchedulingOnControlPlanes).toBe(true);
      expect(v1(gen(minor).controlplane).cluster.allowSchedulingOnControlPlanes).toBeUndefined();
      expect(v1(gen(minor, { allowSchedulingOnControlPlanes: true }).worker).cluster.allowSchedulingOnControlPlanes).toBeUndefined();
    }
    expect(one(gen(14).controlplane, "KubeNodeConfig").taints).toEqual({ "node-role.kubernetes.io/control-plane": "NoSchedule" });
    const node = one(gen(14, { allowSchedulingOnControlPlanes: true }).controlplane, "KubeNodeConfig");
    expect(node.taints).toBeUndefined();
    expect(node.labels).toEqual({ "node-role.kubernetes.io/control-plane": "", "node.kubernetes.io/exclude-from-external-load-balancers": "" });
  });

  it("local API server port: cluster.controlPlane.localAPIServerPort ≤ 1.13, KubeAPIServerConfig.apiPort in 1.14", () => {
    for (const minor of [...LEGACY, ...MULTIDOC]) {
      const out = gen(minor, { localAPIServerPort: 7443 });
      expect(v1(out.controlplane).cluster.controlPlane).toEqual({ endpoint: "https://api.example.test:6443", localAPIServerPort: 7443 });
      expect(v1(out.worker).cluster.controlPlane).toEqual({ endpoint: "https://api.example.test:6443" });
    }
    expect(one(gen(14, { localAPIServerPort: 7443 }).controlplane, "KubeAPIServerConfig").apiPort).toBe(7443);
  });

  it("install disk and image: machine.install ≤ 1.13, UnattendedInstallConfig (both roles, only with a disk) in 1.14", () => {
    const install = { installDisk: "/dev/vda", installImage: "factory.test/metal-installer/x:v1.13.10" };
    for (const minor of [...LEGACY, ...MULTIDOC]) {
      for (const docs of Object.values({ cp: gen(minor, install).controlplane, w: gen(minor, install).worker })) {
        expect(v1(docs).machine.install).toMatchObject({ disk: "/dev/vda", image: install.installImage, wipe: false });
      }
    }
    const out = gen(14, install);
    for (const docs of [out.controlplane, out.worker]) {
      expect(one(docs, "UnattendedInstallConfig")).toEqual({
        apiVersion: "v1alpha1",
        kind: "UnattendedInstallConfig",
        installer: { image: install.installImage },
        provisioning: { diskSelector: { match: 'disk.dev_path == "/dev/vda"' }, wipe: false },
      });
      expect(v1(docs).machine.install).toBeUndefined();
    }
    const imageOnly = gen(14, { installImage: install.installImage });
    expect(docsOf(imageOnly.controlplane, "UnattendedInstallConfig")).toEqual([]);
    expect(imageOnly.warnings.join("\n")).toMatch(/installImage was not written.*installDisk/);
  });

  it("install extra kernel args: written ≤ 1.13 (with a warning from 1.10), dropped in 1.14 with a warning pointing to the schematic", () => {
    const installExtraKernelArgs = ["console=ttyS0", "net.ifnames=0"];
    expect(v1(gen(9, { installExtraKernelArgs }).worker).machine.install.extraKernelArgs).toEqual(installExtraKernelArgs);
    expect(gen(9, { installExtraKernelArgs }).warnings).toEqual([]);
    for (const minor of [10, 11, ...MULTIDOC]) {
      const out = gen(minor, { installExtraKernelArgs });
      expect(v1(out.controlplane).machine.install.extraKernelArgs).toEqual(installExtraKernelArgs);
      expect(out.warnings.join("\n")).toMatch(/schematic \(customization\.extraKernelArgs\)/);
    }
    const out = gen(14, { installExtraKernelArgs, installDisk: "/dev/sda" });
    expect(JSON.stringify(out.controlplane)).not.toContain("console=ttyS0");
    expect(out.warnings.join("\n")).toMatch(/not written: Talos 1\.14 .*Image Factory schematic \(customization\.extraKernelArgs\)/);
  });

  it("DNS domain and pod/service subnets: cluster.network ≤ 1.13, KubeNetworkConfig in 1.14", () => {
    const options = { dnsDomain: "k8s.internal", podSubnets: ["10.200.0.0/16"], serviceSubnets: ["10.201.0.0/16", "fd00:10::/112"] };
    for (const minor of [...LEGACY, ...MULTIDOC]) {
      expect(v1(gen(minor, options).worker).cluster.network).toEqual({
        dnsDomain: "k8s.internal",
        podSubnets: ["10.200.0.0/16"],
        serviceSubnets: ["10.201.0.0/16", "fd00:10::/112"],
      });
    }
    expect(one(gen(14, options).worker, "KubeNetworkConfig")).toEqual({
      apiVersion: "v1alpha1",
      kind: "KubeNetworkConfig",
      dnsDomain: "k8s.internal",
      podSubnets: ["10.200.0.0/16"],
      serviceSubnets: ["10.201.0.0/16", "fd00:10::/112"],
    });
  });

  it("1.14 with every option: documents in Talos's generator order", () => {
    const out = gen(14, {
      installDisk: "/dev/sda",
      sysctls: { a: "1" },
      registryMirrors: { "docker.io": ["https://m.test"] },
      diskEncryption: { state: { keyType: "nodeID" } },
      hostname: "cp-1",
      network: { interface: "eth0", addresses: ["10.0.0.2/24"], gateway: "10.0.0.1", nameservers: ["10.0.0.1"] },
      vip: { ip: "10.0.0.100" },
      cni: { name: "custom", urls: ["https://cni.test/x.yaml"] },
    });
    expect(kinds(out.controlplane)).toEqual([
      "v1alpha1",
      "DiscoveryServiceConfig/default",
      "DiscoveryIdentityConfig",
      "UnattendedInstallConfig",
      "ResolverConfig",
      "SysctlConfig",
      "VolumeConfig/STATE",
      "VolumeConfig/EPHEMERAL",
      "FilesystemTrimConfig",
      "SecurityProfileConfig",
      "RegistryMirrorConfig/docker.io",
      "HostnameConfig",
      "LinkConfig/eth0",
      "Layer2VIPConfig/10.0.0.100",
      "KubeClusterConfig",
      "KubeNodeConfig",
      "KubeletConfig",
      "KubeNetworkConfig",
      "KubeAPIServerCAConfig",
      "KubePrismConfig",
      "KubeAggregatorCAConfig",
      "KubeAdmissionControlConfig/PodSecurity",
      "KubeAuditPolicyConfig",
      "KubeAuthenticationConfig",
      "KubeAuthorizerConfig/node",
      "KubeAuthorizerConfig/rbac",
      "KubeEtcdEncryptionConfig",
      "KubeServiceAccountConfig",
      "KubeAPIServerConfig",
      "KubeControllerManagerConfig",
      "KubeSchedulerConfig",
      "KubeProxyConfig",
      "KubeCoreDNSConfig",
      "KubeExternalManifestConfig/custom-cni",
    ]);
  });

  it("is pure: the same input gives the same output, and the input is not changed", () => {
    const options: GenerateOptions = { sysctls: { b: "2", a: "1" }, additionalSANs: ["x"] };
    const frozen = structuredClone(options);
    expect(gen(14, options)).toEqual(gen(14, options));
    expect(options).toEqual(frozen);
    const out = gen(14, options);
    (v1(out.controlplane).machine.certSANs as string[]).push("y");
    expect(v1(gen(14, options).controlplane).machine.certSANs).toEqual(["x"]);
  });
});
