/**
 * Config patches with Talos's rules (pkg/machinery/config/configpatcher,
 * merge, configloader/internal/decoder), on the generated configs Talos
 * itself pins in reference/talos/stability/. Expected values come from the
 * rules, case by case; the inputs are Talos's own goldens.
 */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { findContract, type Contract } from "../../src/talos/contracts/index.js";
import { documentKey, parseDocuments, stringifyDocuments, type ConfigDocument } from "../../src/talos/document.js";
import { applyPatches, parsePatch, PatchError, type Patch } from "../../src/talos/patch.js";
import { haveReference, referenceDir } from "../helpers/reference.js";

const haveGoldens = haveReference("talos", "stability");

function contract(minor: number): Contract {
  const c = findContract(1, minor);
  if (!c) throw new Error(`no contract 1.${minor}`);
  return c;
}

function golden(minor: number, role: "controlplane" | "worker"): ConfigDocument[] {
  return parseDocuments(readFileSync(referenceDir("talos", "stability", `v1.${minor}`, `base-${role}.yaml`), "utf8"));
}

function patch(minor: number, docs: ConfigDocument[], ...texts: string[]): ConfigDocument[] {
  return applyPatches(
    docs,
    texts.map((t, i) => parsePatch(t, `patch ${i + 1}`)),
    { contract: contract(minor) },
  );
}

function doc(docs: ConfigDocument[], key: string): Record<string, any> {
  const found = docs.find((d) => documentKey(d) === key);
  if (!found) throw new Error(`no ${key} document in ${docs.map(documentKey).join(", ")}`);
  return found as Record<string, any>;
}

function keys(docs: ConfigDocument[]): string[] {
  return docs.map(documentKey);
}

/** The error a patch raises, with the input shown unchanged afterwards. */
function patchError(minor: number, docs: ConfigDocument[], ...texts: string[]): string {
  const before = structuredClone(docs);
  let message = "";
  try {
    patch(minor, docs, ...texts);
  } catch (err) {
    expect(err).toBeInstanceOf(PatchError);
    message = (err as Error).message;
  }
  expect(message, "the patch should have failed").not.toBe("");
  expect(docs).toEqual(before);
  return message;
}

interface Case {
  name: string;
  minor: 13 | 14;
  role?: "controlplane" | "worker";
  patches: string[];
  check: (out: ConfigDocument[], base: ConfigDocument[]) => void;
}

const STRATEGIC_CASES: Case[] = [
  {
    name: "a field delete removes the key and keeps its siblings",
    minor: 13,
    patches: ["machine:\n  features:\n    kubePrism:\n      $patch: delete\n"],
    check: (out, base) => {
      const features = doc(out, "v1alpha1").machine.features;
      expect(features).not.toHaveProperty("kubePrism");
      expect(features).toEqual({ diskQuotaSupport: true, hostDNS: doc(base, "v1alpha1").machine.features.hostDNS });
    },
  },
  {
    name: "a map key delete removes one label",
    minor: 13,
    patches: ["machine:\n  nodeLabels:\n    node.kubernetes.io/exclude-from-external-load-balancers:\n      $patch: delete\n"],
    check: (out) => expect(doc(out, "v1alpha1").machine.nodeLabels).toEqual({}),
  },
  {
    name: "a list item delete selects the item by its first key",
    minor: 13,
    patches: ["cluster:\n  apiServer:\n    admissionControl:\n      - name: PodSecurity\n        $patch: delete\n"],
    check: (out) => {
      expect(doc(out, "v1alpha1").cluster.apiServer.admissionControl).toEqual([]);
      expect(doc(out, "v1alpha1").cluster.apiServer.auditPolicy.kind).toBe("Policy");
    },
  },
  {
    // Talos's own configpatcher testdata/patchlink case.
    name: "a list item delete in a document, then the rest of the patch merges",
    minor: 14,
    patches: [
      "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\naddresses:\n  - address: 10.0.42.136/24\nroutes:\n  - gateway: 10.0.42.1\n",
      "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\naddresses:\n  - address: 10.0.42.136/24\n    $patch: delete\n  - address: 10.0.42.137/24\n",
    ],
    check: (out) => {
      expect(doc(out, "LinkConfig/eth0")).toEqual({
        apiVersion: "v1alpha1",
        kind: "LinkConfig",
        name: "eth0",
        addresses: [{ address: "10.0.42.137/24" }],
        routes: [{ gateway: "10.0.42.1" }],
      });
    },
  },
  {
    name: "a whole-document delete removes the document",
    minor: 14,
    patches: ["apiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\n$patch: delete\n"],
    check: (out, base) => {
      expect(keys(out)).toEqual(keys(base).filter((k) => k !== "KubeFlannelCNIConfig"));
    },
  },
  {
    name: "a named-document delete removes only that name",
    minor: 14,
    patches: ["apiVersion: v1alpha1\nkind: KubeAuthorizerConfig\nname: node\n$patch: delete\n"],
    check: (out) => {
      expect(keys(out).filter((k) => k.startsWith("KubeAuthorizerConfig"))).toEqual(["KubeAuthorizerConfig/rbac"]);
    },
  },
  {
    name: "a delete for an absent document is skipped",
    minor: 13,
    patches: [
      "apiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\n$patch: delete\n---\napiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: docker.io\nendpoints:\n  $patch: delete\n",
    ],
    check: (out, base) => expect(out).toEqual(base),
  },
  {
    name: "pod subnets are replaced, not appended (merge:\"replace\")",
    minor: 13,
    patches: ["cluster:\n  network:\n    podSubnets: [10.32.0.0/12]\n"],
    check: (out) => {
      expect(doc(out, "v1alpha1").cluster.network.podSubnets).toEqual(["10.32.0.0/12"]);
      expect(doc(out, "v1alpha1").cluster.network.serviceSubnets).toEqual(["10.96.0.0/12"]);
    },
  },
  {
    name: "the API server audit policy is replaced whole",
    minor: 13,
    patches: ["cluster:\n  apiServer:\n    auditPolicy:\n      rules:\n        - level: None\n"],
    check: (out) => expect(doc(out, "v1alpha1").cluster.apiServer.auditPolicy).toEqual({ rules: [{ level: "None" }] }),
  },
  {
    name: "KubeNetworkConfig subnets and KubeAuditPolicyConfig.configuration are replaced",
    minor: 14,
    patches: [
      "apiVersion: v1alpha1\nkind: KubeNetworkConfig\nserviceSubnets: [10.112.0.0/12]\n---\napiVersion: v1alpha1\nkind: KubeAuditPolicyConfig\nconfiguration:\n  rules: [{level: None}]\n",
    ],
    check: (out) => {
      expect(doc(out, "KubeNetworkConfig").serviceSubnets).toEqual(["10.112.0.0/12"]);
      expect(doc(out, "KubeNetworkConfig").podSubnets).toEqual(["10.244.0.0/16"]);
      expect(doc(out, "KubeAuditPolicyConfig").configuration).toEqual({ rules: [{ level: "None" }] });
    },
  },
  {
    name: "other lists append",
    minor: 13,
    patches: ["machine:\n  certSANs: [a.example]\n", "machine:\n  certSANs: [b.example]\n"],
    check: (out) => expect(doc(out, "v1alpha1").machine.certSANs).toEqual(["a.example", "b.example"]),
  },
  {
    name: "empty strings and zeros in a patch do not overwrite",
    minor: 13,
    patches: ['machine:\n  kubelet:\n    image: ""\n  features:\n    kubePrism:\n      port: 0\ncluster:\n  network:\n    dnsDomain: ""\n'],
    check: (out, base) => expect(out).toEqual(base),
  },
  {
    name: "an explicit false overwrites",
    minor: 13,
    patches: ["machine:\n  features:\n    kubePrism:\n      enabled: false\n  kubelet:\n    disableManifestsDirectory: false\n"],
    check: (out) => {
      expect(doc(out, "v1alpha1").machine.features.kubePrism).toEqual({ enabled: false, port: 7445 });
      expect(doc(out, "v1alpha1").machine.kubelet.disableManifestsDirectory).toBe(false);
    },
  },
  {
    name: "an explicit false overwrites in a document",
    minor: 14,
    patches: ["apiVersion: v1alpha1\nkind: KubeletConfig\ndefaultRuntimeSeccompProfileEnabled: false\nimage: ''\n"],
    check: (out) => {
      expect(doc(out, "KubeletConfig").defaultRuntimeSeccompProfileEnabled).toBe(false);
      expect(doc(out, "KubeletConfig").image).toBe("ghcr.io/siderolabs/kubelet:v1.28.0");
    },
  },
  {
    name: "network interfaces merge by name, VLANs by vlanId",
    minor: 13,
    role: "worker",
    patches: [
      "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses: [10.0.0.2/24]\n        vlans:\n          - vlanId: 10\n            addresses: [10.10.0.2/24]\n",
      "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        mtu: 9000\n        addresses: [10.0.0.3/24]\n        vlans:\n          - vlanId: 10\n            mtu: 1400\n          - vlanId: 20\n            dhcp: true\n      - interface: eth1\n        dhcp: true\n",
    ],
    check: (out) => {
      expect(doc(out, "v1alpha1").machine.network.interfaces).toEqual([
        {
          interface: "eth0",
          addresses: ["10.0.0.2/24", "10.0.0.3/24"],
          vlans: [
            { vlanId: 10, addresses: ["10.10.0.2/24"], mtu: 1400 },
            { vlanId: 20, dhcp: true },
          ],
          mtu: 9000,
        },
        { interface: "eth1", dhcp: true },
      ]);
    },
  },
  {
    name: "interfaces without a name merge by an identical deviceSelector",
    minor: 13,
    role: "worker",
    patches: [
      "machine:\n  network:\n    interfaces:\n      - deviceSelector: {hardwareAddr: '52:54:00:*'}\n        dhcp: true\n",
      "machine:\n  network:\n    interfaces:\n      - deviceSelector: {hardwareAddr: '52:54:00:*'}\n        mtu: 1450\n      - deviceSelector: {driver: virtio_net}\n        dhcp: false\n",
    ],
    check: (out) => {
      expect(doc(out, "v1alpha1").machine.network.interfaces).toEqual([
        { deviceSelector: { hardwareAddr: "52:54:00:*" }, dhcp: true, mtu: 1450 },
        { deviceSelector: { driver: "virtio_net" }, dhcp: false },
      ]);
    },
  },
  {
    name: "a list item delete and an append in one patch (deletes first)",
    minor: 13,
    role: "worker",
    patches: [
      "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        dhcp: true\n      - interface: eth1\n        dhcp: true\n",
      "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        $patch: delete\n      - interface: eth1\n        addresses: [10.3.5.5/32]\n      - interface: eth0\n        dummy: true\n",
    ],
    check: (out) => {
      expect(doc(out, "v1alpha1").machine.network.interfaces).toEqual([
        { interface: "eth1", dhcp: true, addresses: ["10.3.5.5/32"] },
        { interface: "eth0", dummy: true },
      ]);
    },
  },
  {
    name: "admission plugins merge by name",
    minor: 13,
    patches: ["cluster:\n  apiServer:\n    admissionControl:\n      - name: PodSecurity\n        configuration:\n          defaults:\n            enforce: restricted\n"],
    check: (out, base) => {
      const plugins = doc(out, "v1alpha1").cluster.apiServer.admissionControl;
      expect(plugins).toHaveLength(1);
      expect(plugins[0].configuration.defaults).toEqual({ ...doc(base, "v1alpha1").cluster.apiServer.admissionControl[0].configuration.defaults, enforce: "restricted" });
      // Lists inside an admission plugin's configuration still append.
      expect(plugins[0].configuration.exemptions.namespaces).toEqual(["kube-system"]);
    },
  },
  {
    name: "extraArgs are replaced key by key",
    minor: 13,
    patches: ["machine:\n  kubelet:\n    extraArgs: {a: '1', b: '2'}\n", "machine:\n  kubelet:\n    extraArgs: {b: '3', c: '4'}\n"],
    check: (out) => expect(doc(out, "v1alpha1").machine.kubelet.extraArgs).toEqual({ a: "1", b: "3", c: "4" }),
  },
  {
    name: "a list-valued extraArg is replaced, not appended",
    minor: 14,
    patches: [
      "apiVersion: v1alpha1\nkind: KubeAPIServerConfig\nextraArgs:\n  feature-gates: [A=true, B=true]\n  v: '2'\n",
      "apiVersion: v1alpha1\nkind: KubeAPIServerConfig\nextraArgs:\n  feature-gates: [C=true]\n",
    ],
    check: (out) => expect(doc(out, "KubeAPIServerConfig").extraArgs).toEqual({ "feature-gates": ["C=true"], v: "2" }),
  },
  {
    name: "a document with no match is appended; a matching one is merged by kind and name",
    minor: 14,
    patches: [
      "apiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: docker.io\nendpoints:\n  - url: https://mirror.example/v2\n---\napiVersion: v1alpha1\nkind: KubeAuthorizerConfig\nname: rbac\nwebhook: {}\n",
    ],
    check: (out, base) => {
      expect(keys(out)).toEqual([...keys(base), "RegistryMirrorConfig/docker.io"]);
      expect(doc(out, "RegistryMirrorConfig/docker.io").endpoints).toEqual([{ url: "https://mirror.example/v2" }]);
      expect(doc(out, "KubeAuthorizerConfig/rbac")).toEqual({ apiVersion: "v1alpha1", kind: "KubeAuthorizerConfig", name: "rbac", type: "RBAC", webhook: {} });
      expect(doc(out, "KubeAuthorizerConfig/node")).toEqual(doc(base, "KubeAuthorizerConfig/node"));
    },
  },
  {
    name: "HostnameConfig merges; v1alpha1 stays first",
    minor: 13,
    patches: ["apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp-1\nauto: 'off'\n---\nmachine:\n  certSANs: [10.0.0.10]\n"],
    check: (out) => {
      expect(keys(out)).toEqual(["v1alpha1", "HostnameConfig"]);
      expect(doc(out, "HostnameConfig")).toEqual({ apiVersion: "v1alpha1", kind: "HostnameConfig", auto: "off", hostname: "cp-1" });
      expect(doc(out, "v1alpha1").machine.certSANs).toEqual(["10.0.0.10"]);
    },
  },
];

describe.skipIf(!haveGoldens)("strategic merge patches on Talos's generated configs", () => {
  for (const c of STRATEGIC_CASES) {
    it(`${c.minor === 13 ? "1.13" : "1.14"}: ${c.name}`, () => {
      const base = golden(c.minor, c.role ?? "controlplane");
      const before = structuredClone(base);
      const out = patch(c.minor, base, ...c.patches);
      c.check(out, base);
      expect(base, "the input documents are not changed").toEqual(before);
    });
  }

  it("the output is YAML Talos reads back to the same documents", () => {
    const out = patch(14, golden(14, "controlplane"), "apiVersion: v1alpha1\nkind: HostnameConfig\n$patch: delete\n");
    expect(parseDocuments(stringifyDocuments(out))).toEqual(out);
  });

  it("a v1alpha1 document in the patch is merged even when it comes after other documents", () => {
    const out = patch(13, golden(13, "worker"), "apiVersion: v1alpha1\nkind: SysctlConfig\nsysctls: {a.b: '1'}\n---\nmachine:\n  sysctls: {c.d: '2'}\n");
    expect(keys(out)).toEqual(["v1alpha1", "HostnameConfig", "SysctlConfig"]);
    expect(doc(out, "v1alpha1").machine.sysctls).toEqual({ "c.d": "2" });
  });

  it("deleting below a key the config lacks is an error, as in Talos (nothing is changed)", () => {
    // Talos: "patch delete: path 'machine.network.hostname' ... lookup failed".
    const message = patchError(13, golden(13, "controlplane"), "machine:\n  network:\n    hostname:\n      $patch: delete\n");
    expect(message).toMatch(/machine\.network\.hostname.*machine\.network is not in the config/);
  });

  it("deleting a list item that does not exist is an error", () => {
    const message = patchError(13, golden(13, "controlplane"), "cluster:\n  apiServer:\n    admissionControl:\n      - name: NoSuchPlugin\n        $patch: delete\n");
    expect(message).toContain("name: NoSuchPlugin");
  });

  it("the v1alpha1 document itself cannot be deleted", () => {
    expect(() => parsePatch("version: v1alpha1\n$patch: delete\n")).toThrow(/v1alpha1 document cannot be deleted/);
  });

  it("a patch that puts a mapping where the config has a list fails naming the path (nothing is changed)", () => {
    const message = patchError(13, golden(13, "controlplane"), "machine:\n  certSANs:\n    a: b\n");
    expect(message).toContain("machine.certSANs");
    expect(message).toContain("a mapping where the config has a list");
  });

  it("a patch that puts text where the config has a number fails", () => {
    const message = patchError(14, golden(14, "controlplane"), "apiVersion: v1alpha1\nkind: KubePrismConfig\nport: seven\n");
    expect(message).toContain("KubePrismConfig: port");
  });

  it("a failing patch in a list of patches leaves the input unchanged", () => {
    patchError(13, golden(13, "controlplane"), "machine:\n  certSANs: [ok.example]\n", "machine:\n  certSANs: {bad: true}\n");
  });
});

describe.skipIf(!haveGoldens)("RFC 6902 JSON patches", () => {
  const ops = `
- op: add
  path: /machine/certSANs/-
  value: 10.0.0.10
- op: replace
  path: /cluster/network/dnsDomain
  value: example.internal
- op: remove
  path: /machine/features/kubePrism
- op: test
  path: /machine/type
  value: controlplane
- op: copy
  from: /cluster/clusterName
  path: /machine/nodeLabels/cluster
- op: move
  from: /machine/nodeLabels/cluster
  path: /machine/nodeLabels/cluster-name
`;

  it("apply to a single-document (1.11) config", () => {
    const base = golden(11, "controlplane");
    expect(base).toHaveLength(1);
    const before = structuredClone(base);
    const [out] = patch(11, base, ops) as [Record<string, any>];
    expect(out.machine.certSANs).toEqual(["10.0.0.10"]);
    expect(out.cluster.network.dnsDomain).toBe("example.internal");
    expect(out.machine.features).not.toHaveProperty("kubePrism");
    expect(out.machine.nodeLabels).toEqual({ "node.kubernetes.io/exclude-from-external-load-balancers": "", "cluster-name": "base" });
    expect(base).toEqual(before);
  });

  it("JSON text is read as a JSON patch too", () => {
    const p = parsePatch('[{"op": "replace", "path": "/machine/install/wipe", "value": true}]');
    expect(p.type).toBe("json6902");
    const [out] = applyPatches(golden(11, "worker"), [p], { contract: contract(11) }) as [Record<string, any>];
    expect(out.machine.install.wipe).toBe(true);
  });

  for (const minor of [12, 13, 14] as const) {
    it(`are refused on a multi-document (1.${minor}) config with a clear error`, () => {
      const base = golden(minor, "worker");
      const message = patchError(minor, base, "- op: add\n  path: /machine/certSANs/-\n  value: a\n");
      expect(message).toContain("JSON patches (RFC 6902) apply to single-document configs only");
      expect(message).toContain(`${base.length} documents`);
      expect(message).toContain("use a strategic merge patch");
    });
  }

  it("a failing operation names itself and changes nothing", () => {
    const message = patchError(11, golden(11, "controlplane"), "- op: add\n  path: /machine/certSANs/-\n  value: a\n- op: remove\n  path: /machine/nosuch\n");
    expect(message).toMatch(/operation 2 \(remove \/machine\/nosuch\)/);
  });

  it("a failed test operation fails the patch", () => {
    const message = patchError(11, golden(11, "worker"), "- op: test\n  path: /machine/type\n  value: controlplane\n");
    expect(message).toContain("test failed");
  });
});

describe("invalid patches", () => {
  const invalid: Array<[string, string, RegExp]> = [
    ["not YAML", "machine: [unclosed\n", /not valid YAML/],
    ["empty", "# nothing\n", /the patch is empty/],
    ["a document without kind", "apiVersion: v1alpha1\nhostname: x\n", /missing kind/],
    ["a document without apiVersion", "kind: HostnameConfig\nhostname: x\n", /missing apiVersion/],
    ["a JSON patch operation without value", "- op: add\n  path: /machine/certSANs/-\n", /operation 1 \(add\): "value" is required|"value" is required/],
    ["an unknown JSON patch op", "- op: merge\n  path: /machine\n", /"op" must be one of/],
    ["a JSON pointer without a leading slash", "- op: remove\n  path: machine/certSANs\n", /is not a JSON pointer/],
    ["a JSON patch next to another document", "- op: remove\n  path: /a\n---\nmachine: {}\n", /one list of operations/],
    ["a delete of a key inside a list item", "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        vlans:\n          $patch: delete\n", /cannot delete a key inside a list item/],
    ["a $patch other than delete", "machine:\n  certSANs:\n    $patch: replace\n", /machine\.certSANs: only "\$patch: delete" is supported/],
    ["a __proto__ key", "machine:\n  __proto__:\n    polluted: true\n", /"__proto__" is not a config key/],
    ["a __proto__ pointer", "- op: add\n  path: /__proto__/polluted\n  value: true\n", /"__proto__" is not a config key/],
    ["a whole-document delete without kind", "apiVersion: v1alpha1\n$patch: delete\n", /needs both apiVersion and kind/],
  ];
  for (const [name, text, expected] of invalid) {
    it(`${name}: a clear error`, () => {
      let error: unknown;
      try {
        parsePatch(text, "bad.yaml");
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(PatchError);
      expect((error as Error).message).toMatch(/^bad\.yaml/);
      expect((error as Error).message).toMatch(expected);
    });
  }

  it("a strategic merge patch is read as one", () => {
    const p: Patch = parsePatch('{"machine": {"certSANs": ["x"]}}');
    expect(p.type).toBe("strategic-merge");
  });
});
