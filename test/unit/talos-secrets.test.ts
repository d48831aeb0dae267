import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as x509 from "@peculiar/x509";
import { Command, CommanderError } from "commander";
import { createPrivateKey } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSecureContext as tlsSecureContext } from "node:tls";
import { parse as parseYaml } from "yaml";
import {
  SecretsError,
  TOKEN_PATTERN,
  generateSecrets,
  pemToConfigBase64,
  validateSecrets,
  type SecretsBundle,
} from "../../src/talos/secrets.js";
import { goYamlScalar, readSecretsYaml, writeSecretsYaml } from "../../src/talos/secrets-yaml.js";
import { decodePem, parseCertificate, parsePrivateKey, toPkcs8Pem } from "../../src/talos/pki.js";
import { makeTalosconfig } from "../../src/talos/talosconfig.js";
import { makeAdminKubeconfig } from "../../src/talos/kubeconfig.js";
import { genCommand } from "../../src/talos/cli-gen.js";
import { registerSecretsCommands, writeSecretFile } from "../../src/talos/cli-secrets.js";
import { haveReference, referenceDir } from "../helpers/reference.js";

const DAY_MS = 24 * 3600_000;

/** Edits a secrets.yaml as a YAML tree (Go field names), for building bad bundles. */
function edit(text: string, change: (doc: Record<string, any>) => void): string {
  const doc = parseYaml(text) as Record<string, any>;
  change(doc);
  // JSON is YAML: a hand-edited file, not one our writer would produce.
  return JSON.stringify(doc);
}

function readError(text: string): SecretsError {
  try {
    readSecretsYaml(text);
  } catch (err) {
    if (err instanceof SecretsError) return err;
    throw err;
  }
  throw new Error("readSecretsYaml accepted a bad bundle");
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

// One RSA-4096 generation for the whole file (about a second).
let bundle: SecretsBundle;
let written: string;
/** Event-loop turns taken while the bundle was being generated. */
let turnsDuringGeneration = 0;
beforeAll(async () => {
  let generating = true;
  const spin = () => {
    if (!generating) return;
    turnsDuringGeneration++;
    setImmediate(spin);
  };
  setImmediate(spin);
  bundle = await generateSecrets();
  generating = false;
  written = writeSecretsYaml(bundle);
});

describe("generated bundle", () => {
  it("round-trips byte-identically through secrets.yaml", () => {
    const again = writeSecretsYaml(readSecretsYaml(written));
    expect(again).toBe(written);
    expect(readSecretsYaml(written)).toEqual(bundle);
  });

  it("has talosctl's layout: Go field names in struct order, four-space indent", () => {
    const keys = written
      .split("\n")
      .filter((l) => l.length > 0)
      .map((l) => l.replace(/:.*$/, ":"));
    expect(keys).toEqual([
      "cluster:", "    id:", "    secret:",
      "secrets:", "    bootstraptoken:", "    secretboxencryptionsecret:",
      "trustdinfo:", "    token:",
      "certs:",
      "    etcd:", "        crt:", "        key:",
      "    k8s:", "        crt:", "        key:",
      "    k8saggregator:", "        crt:", "        key:",
      "    k8sserviceaccount:", "        key:",
      "    os:", "        crt:", "        key:",
    ]);
  });

  it("validates, with talosctl's formats for ids, tokens and keys", () => {
    expect(validateSecrets(bundle)).toEqual([]);
    expect(bundle.secrets.bootstrapToken).toMatch(TOKEN_PATTERN);
    expect(bundle.trustdInfo.token).toMatch(TOKEN_PATTERN);
    expect(bundle.secrets.bootstrapToken).not.toBe(bundle.trustdInfo.token);
    for (const v of [bundle.cluster.id, bundle.cluster.secret, bundle.secrets.secretboxEncryptionSecret!]) {
      // Standard alphabet (talosctl 1.14 writes the cluster id so too), 32 bytes.
      expect(v).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(v, "base64")).toHaveLength(32);
    }
    expect(bundle.secrets.aescbcEncryptionSecret).toBeUndefined();
  });

  it("uses Talos's PEM labels and key types", () => {
    const label = (pem: string) => decodePem(pem).label;
    expect(label(bundle.certs.os.key)).toBe("ED25519 PRIVATE KEY");
    for (const ca of [bundle.certs.etcd, bundle.certs.k8s, bundle.certs.k8sAggregator]) {
      expect(label(ca.key)).toBe("EC PRIVATE KEY");
      expect(parsePrivateKey(ca.key).asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
      expect(label(ca.crt)).toBe("CERTIFICATE");
    }
    expect(label(bundle.certs.k8sServiceAccount.key)).toBe("RSA PRIVATE KEY");
    expect(parsePrivateKey(bundle.certs.k8sServiceAccount.key).asymmetricKeyDetails?.modulusLength).toBe(4096);
    // PKCS#8 inside the Ed25519 block: Node reads the DER as PKCS#8.
    const der = decodePem(bundle.certs.os.key).der;
    expect(createPrivateKey({ key: der, format: "der", type: "pkcs8" }).asymmetricKeyType).toBe("ed25519");
  });

  it("is made off the event loop: the loop keeps turning while the RSA-4096 key is generated", () => {
    // A synchronous RSA-4096 generation would block the loop for its whole
    // duration (about a second), leaving a handful of turns at most.
    expect(turnsDuringGeneration).toBeGreaterThan(200);
  });

  it("makes ten-year CAs with one clock reading", () => {
    const certs = [bundle.certs.os, bundle.certs.etcd, bundle.certs.k8s, bundle.certs.k8sAggregator].map((c) => parseCertificate(c.crt));
    for (const c of certs) {
      expect(c.notAfter.getTime() - c.notBefore.getTime()).toBe(87_600 * 3600_000);
      expect(c.notBefore.getTime()).toBe(certs[0]!.notBefore.getTime());
    }
  });
});

describe("Talos's own stability/secrets.yaml", () => {
  const ok = haveReference("talos", "stability", "secrets.yaml");
  const refText = ok ? readFileSync(referenceDir("talos", "stability", "secrets.yaml"), "utf8") : "";

  it.skipIf(!ok)("is read, validated and re-written semantically unchanged", () => {
    const ref = readSecretsYaml(refText);
    expect(validateSecrets(ref)).toEqual([]);
    const rewritten = writeSecretsYaml(ref);
    expect(parseYaml(rewritten)).toEqual(parseYaml(refText));
  });

  it.skipIf(!ok)("keeps its URL-safe cluster id and its EC P-256 service-account key", () => {
    const ref = readSecretsYaml(refText);
    const original = (parseYaml(refText) as { cluster: { id: string } }).cluster.id;
    expect(ref.cluster.id).toBe(original);
    expect(writeSecretsYaml(ref)).toContain(`    id: ${original}\n`);
    expect(decodePem(ref.certs.k8sServiceAccount.key).label).toBe("EC PRIVATE KEY");
  });
});

describe("validation of an imported bundle names the bad field", () => {
  it("a missing field", () => {
    let err = readError(edit(written, (d) => delete d.certs.os.key));
    expect(err.field).toBe("certs.os.key");
    expect(err.message).toContain("certs.os.key: required");
    err = readError(edit(written, (d) => delete d.trustdinfo));
    expect(err.field).toBe("trustdinfo");
    err = readError(edit(written, (d) => (d.cluster.secret = "")));
    expect(err.field).toBe("cluster.secret");
  });

  it("a PEM field that is not base64, or not PEM", () => {
    let err = readError(edit(written, (d) => (d.certs.k8s.crt = "%%%not-base64%%%")));
    expect(err.field).toBe("certs.k8s.crt");
    expect(err.message).toMatch(/base64/);
    err = readError(edit(written, (d) => (d.certs.k8s.crt = b64("hello, not a certificate"))));
    expect(err.field).toBe("certs.k8s.crt");
    expect(err.message).toMatch(/certs\.k8s\.crt: no PEM block/);
    err = readError(edit(written, (d) => (d.certs.etcd.key = b64("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))));
    expect(err.field).toBe("certs.etcd.key");
  });

  it("a key that does not match its certificate", () => {
    const err = readError(edit(written, (d) => (d.certs.etcd.key = d.certs.k8s.key)));
    expect(err.field).toBe("certs.etcd.key");
    expect(err.message).toMatch(/certs\.etcd\.key: does not match the certificate in certs\.etcd\.crt/);
  });

  it("a key under the wrong label", () => {
    const ecAsEd = bundle.certs.etcd.key.replace(/EC PRIVATE KEY/g, "ED25519 PRIVATE KEY");
    const err = readError(edit(written, (d) => (d.certs.etcd.key = b64(ecAsEd))));
    expect(err.field).toBe("certs.etcd.key");
  });

  it("bad token formats, without echoing the secret", () => {
    let err = readError(edit(written, (d) => (d.secrets.bootstraptoken = "ABCDEF.0123456789abcdef")));
    expect(err.field).toBe("secrets.bootstraptoken");
    expect(err.message).not.toContain("ABCDEF");
    err = readError(edit(written, (d) => (d.trustdinfo.token = "abc.def")));
    expect(err.field).toBe("trustdinfo.token");
  });

  it("lists every problem at once", () => {
    const err = readError(
      edit(written, (d) => {
        d.secrets.bootstraptoken = "nope";
        d.certs.os.key = d.certs.k8s.key;
        d.secrets.aescbcencryptionsecret = d.secrets.secretboxencryptionsecret;
      }),
    );
    expect(err.problems.map((p) => p.slice(0, p.indexOf(":")))).toEqual([
      "secrets.bootstraptoken",
      "secrets.aescbcencryptionsecret",
      "certs.os.key",
    ]);
  });

  it("a cluster secret of the wrong size, and a non-CA certificate", async () => {
    const b: SecretsBundle = structuredClone(bundle);
    b.cluster.secret = Buffer.alloc(16).toString("base64");
    expect(validateSecrets(b)).toEqual(["cluster.secret: decodes to 16 bytes, expected 32"]);
    // A talosconfig client certificate is signed by the OS CA but is no CA itself.
    const cfg = parseYaml(await makeTalosconfig({ clusterName: "c", endpoints: [], secrets: bundle })) as any;
    const leaf = { crt: Buffer.from(cfg.contexts.c.crt, "base64").toString(), key: Buffer.from(cfg.contexts.c.key, "base64").toString() };
    const withLeaf: SecretsBundle = { ...structuredClone(bundle), certs: { ...bundle.certs, os: leaf } };
    expect(validateSecrets(withLeaf)).toEqual(["certs.os.crt: not a CA certificate (basicConstraints CA:TRUE missing)"]);
  });

  it("not YAML, or several documents", () => {
    expect(readError("cluster: [").field).toBe("(file)");
    expect(readError(`${written}---\n${written}`).message).toMatch(/one YAML document, found 2/);
  });
});

describe("older contracts", () => {
  it("an EC P-256 service-account key up to 1.6, aescbc up to 1.2, as Talos's generator", async () => {
    const b16 = await generateSecrets({ versionContract: "v1.6.7" });
    expect(decodePem(b16.certs.k8sServiceAccount.key).label).toBe("EC PRIVATE KEY");
    expect(b16.secrets.secretboxEncryptionSecret).toBeDefined();
    const b12 = await generateSecrets({ versionContract: "1.2" });
    expect(b12.secrets.aescbcEncryptionSecret).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(b12.secrets.secretboxEncryptionSecret).toBeUndefined();
    expect(writeSecretsYaml(b12)).toContain("    aescbcencryptionsecret: ");
    expect(validateSecrets(b12)).toEqual([]);
    await expect(generateSecrets({ versionContract: "latest" })).rejects.toThrow(SecretsError);
  });
});

describe("YAML scalars as go-yaml writes them", () => {
  it.each([
    ["LS0tLS1CRUdJTg==", "LS0tLS1CRUdJTg=="],
    ["0raF93qnkMvF-FZNuvyGozXNdLiT2FOWSlyBaW4PR-w=", "0raF93qnkMvF-FZNuvyGozXNdLiT2FOWSlyBaW4PR-w="],
    ["-leading-dash", "-leading-dash"],
    ["abc123.0123456789abcdef", "abc123.0123456789abcdef"],
    ["123456.1234567890123456", '"123456.1234567890123456"'],
    ["123456", '"123456"'],
    ["true", '"true"'],
    ["yes", '"yes"'],
    ["null", '"null"'],
    ["", '""'],
    ["https://base:6443", "https://base:6443"],
    ["admin@base", "admin@base"],
    ["@at", "'@at'"],
    ["key: value", "'key: value'"],
  ])("%s → %s", (value, expected) => {
    expect(goYamlScalar(value)).toBe(expected);
  });

  it("reads an all-digit token as text whether quoted or not", () => {
    const digits = "123456.1234567890123456";
    const quoted = edit(written, (d) => (d.trustdinfo.token = digits));
    expect(readSecretsYaml(quoted).trustdInfo.token).toBe(digits);
    const plain = written.replace(/^ {4}token: .*$/m, `    token: ${digits}`);
    expect(readSecretsYaml(plain).trustdInfo.token).toBe(digits);
    expect(writeSecretsYaml(readSecretsYaml(plain))).toContain(`    token: "${digits}"\n`);
  });
});

describe("PEM helpers", () => {
  it("relabels Talos's Ed25519 key to PKCS#8 PRIVATE KEY for node:tls, in memory only", () => {
    const pkcs8 = toPkcs8Pem(bundle.certs.os.key);
    expect(decodePem(pkcs8).label).toBe("PRIVATE KEY");
    expect(() => tlsSecureContext({ key: pkcs8, cert: bundle.certs.os.crt })).not.toThrow();
    expect(decodePem(bundle.certs.os.key).label).toBe("ED25519 PRIVATE KEY");
    // The EC and RSA keys convert too (one helper for every mTLS use).
    expect(decodePem(toPkcs8Pem(bundle.certs.k8s.key)).label).toBe("PRIVATE KEY");
  });

  it("embeds PEM in configs as standard base64 of its bytes", () => {
    const embedded = pemToConfigBase64(bundle.certs.os.crt);
    expect(Buffer.from(embedded, "base64").toString()).toBe(bundle.certs.os.crt);
    expect(written).toContain(`        crt: ${embedded}\n`);
  });
});

describe("talosconfig", () => {
  it("has one context named after the cluster, the OS CA and an os:admin client cert", async () => {
    const text = await makeTalosconfig({ clusterName: "base", endpoints: ["10.1.0.11", "10.1.0.12"], secrets: bundle });
    expect(text.split("\n").slice(0, 6)).toEqual([
      "context: base",
      "contexts:",
      "    base:",
      "        endpoints:",
      "            - 10.1.0.11",
      "            - 10.1.0.12",
    ]);
    const cfg = parseYaml(text) as { context: string; contexts: Record<string, { endpoints: string[]; nodes?: string[]; ca: string; crt: string; key: string }> };
    expect(Object.keys(cfg.contexts)).toEqual(["base"]);
    const ctx = cfg.contexts.base!;
    expect(Object.keys(ctx)).toEqual(["endpoints", "ca", "crt", "key"]);
    expect(Buffer.from(ctx.ca, "base64").toString()).toBe(bundle.certs.os.crt);

    const crtPem = Buffer.from(ctx.crt, "base64").toString();
    const keyPem = Buffer.from(ctx.key, "base64").toString();
    expect(decodePem(keyPem).label).toBe("ED25519 PRIVATE KEY");
    const cert = parseCertificate(crtPem);
    const ca = parseCertificate(bundle.certs.os.crt);
    expect(cert.subject).toBe("O=os:admin");
    expect(cert.issuer).toBe(ca.subject);
    expect(await cert.verify({ publicKey: ca.publicKey, signatureOnly: true })).toBe(true);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(365 * DAY_MS);
  });

  it("writes nodes when given and an empty endpoint list as []", async () => {
    const text = await makeTalosconfig({ clusterName: "c1", endpoints: [], nodes: ["10.1.0.21"], secrets: bundle });
    expect(text).toContain("        endpoints: []\n        nodes:\n            - 10.1.0.21\n        ca: ");
  });
});

describe("admin kubeconfig", () => {
  it("names user and context admin@<cluster> and carries a system:masters cert from the Kubernetes CA", async () => {
    const text = await makeAdminKubeconfig({ clusterName: "base", endpoint: "https://10.1.0.10:6443", secrets: bundle });
    const cfg = parseYaml(text) as any;
    expect(cfg["current-context"]).toBe("admin@base");
    expect(cfg.clusters).toEqual([{ name: "base", cluster: { server: "https://10.1.0.10:6443", "certificate-authority-data": pemToConfigBase64(bundle.certs.k8s.crt) } }]);
    expect(cfg.contexts).toEqual([{ name: "admin@base", context: { cluster: "base", namespace: "default", user: "admin@base" } }]);
    expect(cfg.users[0].name).toBe("admin@base");
    const cert = parseCertificate(Buffer.from(cfg.users[0].user["client-certificate-data"], "base64").toString());
    expect(cert.subject).toBe("O=system:masters, CN=admin");
    const ca = parseCertificate(bundle.certs.k8s.crt);
    expect(await cert.verify({ publicKey: ca.publicKey, signatureOnly: true })).toBe(true);
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(365 * DAY_MS + 10_000);
  });

  it("refuses an endpoint that is not a URL", async () => {
    await expect(makeAdminKubeconfig({ clusterName: "c", endpoint: "not a url", secrets: bundle })).rejects.toThrow(/endpoint/);
  });
});

describe("talos-netboot gen secrets", () => {
  const dir = mkdtempSync(join(tmpdir(), "tn-gen-secrets-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function program(): Command {
    const p = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerSecretsCommands(p);
    return p;
  }
  const run = (...args: string[]) => program().parseAsync(["node", "talos-netboot", "gen", "secrets", ...args]);

  it("shares one gen group with other modules", () => {
    const p = program();
    expect(genCommand(p)).toBe(genCommand(p));
    expect(p.commands.filter((c) => c.name() === "gen")).toHaveLength(1);
    expect(genCommand(p).commands.map((c) => c.name())).toContain("secrets");
  });

  it("writes a valid bundle with mode 0600 and refuses to overwrite without --force", async () => {
    const file = join(dir, "secrets.yaml");
    await run("-o", file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const first = readFileSync(file, "utf8");
    expect(validateSecrets(readSecretsYaml(first))).toEqual([]);

    const refused = await run("-o", file).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(CommanderError);
    expect((refused as CommanderError).exitCode).toBe(1);
    expect((refused as Error).message).toMatch(/already exists, use --force/);
    expect(readFileSync(file, "utf8")).toBe(first);

    chmodSync(file, 0o644);
    await run("-o", file, "--force");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).not.toBe(first);
  });

  it("never clobbers a file that appears between check and write", async () => {
    const file = join(dir, "late.yaml");
    writeFileSync(file, "someone else's\n");
    await expect(writeSecretFile(file, "x", false)).rejects.toThrow(/already exists/);
    expect(readFileSync(file, "utf8")).toBe("someone else's\n");
  });
});
