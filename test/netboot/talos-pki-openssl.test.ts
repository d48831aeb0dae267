/**
 * Our PKI checked by OpenSSL and kubectl, not by our own code: every CA we
 * generate is compared field by field with the same CA in Talos's own
 * stability/secrets.yaml (all but keys, serials, key ids and dates equal),
 * the talosconfig admin certificate is verified against the OS CA, and the
 * kubeconfig is read by kubectl and its client certificate verified against
 * the Kubernetes CA.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { generateSecrets, type SecretsBundle } from "../../src/talos/secrets.js";
import { readSecretsYaml, writeSecretsYaml } from "../../src/talos/secrets-yaml.js";
import { makeTalosconfig } from "../../src/talos/talosconfig.js";
import { makeAdminKubeconfig } from "../../src/talos/kubeconfig.js";
import { haveReference, referenceDir } from "../helpers/reference.js";
import { requireTool } from "../helpers/tools.js";

const ready =
  requireTool("openssl", "openssl") &&
  requireTool("kubectl", "kubernetes-client") &&
  haveReference("talos", "stability", "secrets.yaml");

const HOUR_MS = 3600_000;

function openssl(...args: string[]): string {
  return execFileSync("openssl", args, { encoding: "utf8", timeout: 20_000, stdio: ["ignore", "pipe", "pipe"] });
}

/** openssl's verdict without throwing: exit status and combined output. */
function opensslStatus(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync("openssl", args, { encoding: "utf8", timeout: 20_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/**
 * `openssl x509 -text` with what differs between any two CAs of the same kind
 * masked: serial number, dates, public key bytes, key ids, signature bytes
 * (runs of hex lines collapse to one marker, since ECDSA signatures vary in
 * length). Everything else — version, algorithms, curve, names, extensions
 * and their criticality — must be equal.
 */
function certText(file: string): string {
  const lines = openssl("x509", "-in", file, "-noout", "-text").split("\n");
  const out: string[] = [];
  for (const line of lines) {
    let l = line.replace(/(Not (?:Before|After) ?:).*/, "$1 <date>");
    if (/^\s+([0-9a-fA-F]{2}:)*[0-9a-fA-F]{2}:?$/.test(l)) l = "<hex>";
    if (l === "<hex>" && out[out.length - 1] === "<hex>") continue;
    out.push(l);
  }
  return out.join("\n");
}

/** `openssl asn1parse` of a PEM body with values masked: the structure of a key encoding. */
function asn1Structure(file: string): string {
  return openssl("asn1parse", "-in", file)
    .split("\n")
    .map((l) => l.replace(/^\s*\d+:d=(\d+)\s+hl=\d+\s+l=\s*\d+\s+(prim|cons):\s*/, "d=$1 $2 ").replace(/(INTEGER|OCTET STRING|BIT STRING)\s*.*$/, "$1"))
    .join("\n");
}

function dates(file: string): { notBefore: number; notAfter: number } {
  const text = openssl("x509", "-in", file, "-noout", "-dates");
  const get = (k: string) => {
    const t = Date.parse(new RegExp(`^${k}=(.*)$`, "m").exec(text)?.[1] ?? "");
    if (Number.isNaN(t)) throw new Error(`openssl printed no ${k} for ${file}`);
    return t;
  };
  return { notBefore: get("notBefore"), notAfter: get("notAfter") };
}

/** The hex of a key-identifier extension as openssl prints it (`-ext subjectKeyIdentifier`). */
function keyId(file: string, ext: "subjectKeyIdentifier" | "authorityKeyIdentifier"): string {
  const text = openssl("x509", "-in", file, "-noout", "-ext", ext);
  const hex = /((?:[0-9A-F]{2}:){19}[0-9A-F]{2})/.exec(text)?.[1];
  if (!hex) throw new Error(`no ${ext} in ${file}: ${text}`);
  return hex;
}

function pemLabel(file: string): string {
  return /^-----BEGIN ([A-Z0-9 ]+)-----$/m.exec(readFileSync(file, "utf8"))?.[1] ?? "(none)";
}

/** Talos's Ed25519 label is unknown to OpenSSL: hand it the same PKCS#8 bytes as `PRIVATE KEY`. */
function forOpenssl(file: string): string {
  const text = readFileSync(file, "utf8");
  if (!text.includes("ED25519 PRIVATE KEY")) return file;
  const out = `${file}.pkcs8.pem`;
  writeFileSync(out, text.replace(/ED25519 PRIVATE KEY/g, "PRIVATE KEY"), { mode: 0o600 });
  return out;
}

function publicKeyOfCert(file: string): string {
  return openssl("x509", "-in", file, "-noout", "-pubkey");
}
function publicKeyOfKey(file: string): string {
  return openssl("pkey", "-in", forOpenssl(file), "-pubout");
}

describe.skipIf(!ready)("Talos PKI checked with openssl and kubectl", () => {
  let dir: string;
  let ours: SecretsBundle;
  let ref: SecretsBundle;
  const f = (name: string) => join(dir, name);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tn-pki-openssl-"));
    // One fresh bundle for the file (the RSA-4096 key takes about a second).
    ours = readSecretsYaml(writeSecretsYaml(await generateSecrets()));
    ref = readSecretsYaml(readFileSync(referenceDir("talos", "stability", "secrets.yaml"), "utf8"));
    for (const [who, b] of [["ours", ours], ["ref", ref]] as const) {
      for (const [name, pair] of Object.entries(b.certs)) {
        if ("crt" in pair) writeFileSync(f(`${who}-${name}.crt`), pair.crt);
        writeFileSync(f(`${who}-${name}.key`), pair.key, { mode: 0o600 });
      }
    }
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const CAS = ["os", "etcd", "k8s", "k8sAggregator"] as const;

  it.each(CAS)("%s CA: every certificate field but keys, serial, key id and dates equals Talos's", (ca) => {
    const mine = certText(f(`ours-${ca}.crt`));
    const theirs = certText(f(`ref-${ca}.crt`));
    expect(mine).toBe(theirs);
    // The comparison covers what matters: guard against both being empty or masked away.
    expect(theirs).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Certificate Sign/);
    expect(theirs).toMatch(/X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(theirs).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE/);
    expect(theirs).toMatch(/Subject Key Identifier/);
  });

  it("CA subjects: O=talos, O=etcd, O=kubernetes and an empty one for the aggregator", () => {
    const subject = (who: string, ca: string) => openssl("x509", "-in", f(`${who}-${ca}.crt`), "-noout", "-subject", "-issuer");
    for (const ca of CAS) expect(subject("ours", ca)).toBe(subject("ref", ca));
    expect(subject("ours", "os")).toBe("subject=O = talos\nissuer=O = talos\n");
    expect(subject("ours", "k8sAggregator")).toBe("subject=\nissuer=\n");
  });

  it.each(CAS)("%s CA: key type, curve, PEM label and encoding equal Talos's, and the key matches", (ca) => {
    expect(pemLabel(f(`ours-${ca}.key`))).toBe(pemLabel(f(`ref-${ca}.key`)));
    expect(asn1Structure(f(`ours-${ca}.key`))).toBe(asn1Structure(f(`ref-${ca}.key`)));
    const keyText = (who: string) =>
      openssl("pkey", "-in", forOpenssl(f(`${who}-${ca}.key`)), "-noout", "-text")
        .split("\n")
        .filter((l) => !/^\s+[0-9a-f:]+$/.test(l))
        .join("\n");
    expect(keyText("ours")).toBe(keyText("ref"));
    expect(publicKeyOfKey(f(`ours-${ca}.key`))).toBe(publicKeyOfCert(f(`ours-${ca}.crt`)));
  });

  it("key types: Ed25519 (PKCS#8 under ED25519 PRIVATE KEY) for os, ECDSA P-256 (SEC1) for the others", () => {
    expect(pemLabel(f("ours-os.key"))).toBe("ED25519 PRIVATE KEY");
    expect(openssl("pkey", "-in", forOpenssl(f("ours-os.key")), "-noout", "-text")).toMatch(/^ED25519 Private-Key:/);
    for (const ca of ["etcd", "k8s", "k8sAggregator"]) {
      expect(pemLabel(f(`ours-${ca}.key`))).toBe("EC PRIVATE KEY");
      const text = openssl("ec", "-in", f(`ours-${ca}.key`), "-noout", "-text");
      expect(text).toMatch(/Private-Key: \(256 bit\)/);
      expect(text).toMatch(/ASN1 OID: prime256v1/);
    }
  });

  it("service-account key: RSA-4096 in PKCS#1 when generated; Talos's older bundle has EC P-256", () => {
    expect(pemLabel(f("ours-k8sServiceAccount.key"))).toBe("RSA PRIVATE KEY");
    expect(openssl("rsa", "-in", f("ours-k8sServiceAccount.key"), "-noout", "-text")).toMatch(/Private-Key: \(4096 bit, 2 primes\)/);
    expect(opensslStatus("rsa", "-in", f("ours-k8sServiceAccount.key"), "-noout", "-check").out).toMatch(/RSA key ok/);
    expect(pemLabel(f("ref-k8sServiceAccount.key"))).toBe("EC PRIVATE KEY");
    expect(openssl("ec", "-in", f("ref-k8sServiceAccount.key"), "-noout", "-text")).toMatch(/ASN1 OID: prime256v1/);
  });

  it.each(CAS)("%s CA: valid for 87600 hours, like Talos's", (ca) => {
    const mine = dates(f(`ours-${ca}.crt`));
    const theirs = dates(f(`ref-${ca}.crt`));
    expect(mine.notAfter - mine.notBefore).toBe(87_600 * HOUR_MS);
    expect(theirs.notAfter - theirs.notBefore).toBe(87_600 * HOUR_MS);
    expect(mine.notBefore).toBeLessThanOrEqual(Date.now());
  });

  describe("talosconfig admin certificate", () => {
    let ctx: { endpoints: string[]; ca: string; crt: string; key: string };
    beforeAll(async () => {
      const text = await makeTalosconfig({ clusterName: "base", endpoints: ["10.1.0.11"], secrets: ours });
      ctx = (parseYaml(text) as { contexts: Record<string, typeof ctx> }).contexts.base!;
      writeFileSync(f("admin.crt"), Buffer.from(ctx.crt, "base64"));
      writeFileSync(f("admin.key"), Buffer.from(ctx.key, "base64"), { mode: 0o600 });
      writeFileSync(f("talosconfig-ca.crt"), Buffer.from(ctx.ca, "base64"));
    });

    it("chains to the OS CA, which is the talosconfig's ca", () => {
      expect(readFileSync(f("talosconfig-ca.crt"), "utf8")).toBe(readFileSync(f("ours-os.crt"), "utf8"));
      expect(opensslStatus("verify", "-CAfile", f("ours-os.crt"), f("admin.crt"))).toEqual({ status: 0, out: `${f("admin.crt")}: OK\n` });
      // And not to another CA: the verification can fail.
      expect(opensslStatus("verify", "-CAfile", f("ref-os.crt"), f("admin.crt")).status).not.toBe(0);
    });

    it("is an Ed25519 os:admin certificate for client auth only, valid one year", () => {
      const text = openssl("x509", "-in", f("admin.crt"), "-noout", "-text");
      expect(text).toMatch(/Signature Algorithm: ED25519/);
      expect(text).toMatch(/Subject: O = os:admin\n/);
      expect(text).toMatch(/Issuer: O = talos\n/);
      expect(text).toMatch(/X509v3 Extended Key Usage: \n\s+TLS Web Client Authentication\n/);
      expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature\n/);
      expect(text).not.toMatch(/Basic Constraints/);
      // Go names the issuer's key: authority key id = the CA's subject key id.
      expect(keyId(f("admin.crt"), "authorityKeyIdentifier")).toBe(keyId(f("ours-os.crt"), "subjectKeyIdentifier"));
      expect(opensslStatus("verify", "-CAfile", f("ours-os.crt"), "-purpose", "sslclient", f("admin.crt")).status).toBe(0);
      expect(opensslStatus("verify", "-CAfile", f("ours-os.crt"), "-purpose", "sslserver", f("admin.crt")).status).not.toBe(0);
      const d = dates(f("admin.crt"));
      expect(d.notAfter - d.notBefore).toBe(365 * 24 * HOUR_MS);
      expect(pemLabel(f("admin.key"))).toBe("ED25519 PRIVATE KEY");
      expect(publicKeyOfKey(f("admin.key"))).toBe(publicKeyOfCert(f("admin.crt")));
    });
  });

  describe("admin kubeconfig read by kubectl", () => {
    let view: any;
    beforeAll(async () => {
      writeFileSync(f("kubeconfig"), await makeAdminKubeconfig({ clusterName: "base", endpoint: "https://10.1.0.10:6443", secrets: ours }), { mode: 0o600 });
      const json = execFileSync("kubectl", ["config", "view", "--raw", "--kubeconfig", f("kubeconfig"), "-o", "json"], {
        encoding: "utf8",
        timeout: 30_000,
        env: { ...process.env, KUBECONFIG: "" },
      });
      view = JSON.parse(json);
      const user = view.users[0].user;
      writeFileSync(f("kube-admin.crt"), Buffer.from(user["client-certificate-data"], "base64"));
      writeFileSync(f("kube-admin.key"), Buffer.from(user["client-key-data"], "base64"), { mode: 0o600 });
      writeFileSync(f("kube-ca.crt"), Buffer.from(view.clusters[0].cluster["certificate-authority-data"], "base64"));
    });

    it("has the names Talos gives them", () => {
      expect(view["current-context"]).toBe("admin@base");
      expect(view.clusters.map((c: any) => [c.name, c.cluster.server])).toEqual([["base", "https://10.1.0.10:6443"]]);
      expect(view.contexts).toEqual([{ name: "admin@base", context: { cluster: "base", user: "admin@base", namespace: "default" } }]);
      expect(view.users.map((u: any) => u.name)).toEqual(["admin@base"]);
      const current = execFileSync("kubectl", ["config", "current-context", "--kubeconfig", f("kubeconfig")], { encoding: "utf8", timeout: 30_000 });
      expect(current.trim()).toBe("admin@base");
    });

    it("carries the Kubernetes CA and a system:masters client cert that chains to it", () => {
      expect(readFileSync(f("kube-ca.crt"), "utf8")).toBe(readFileSync(f("ours-k8s.crt"), "utf8"));
      expect(opensslStatus("verify", "-CAfile", f("ours-k8s.crt"), "-purpose", "sslclient", f("kube-admin.crt"))).toEqual({
        status: 0,
        out: `${f("kube-admin.crt")}: OK\n`,
      });
      expect(opensslStatus("verify", "-CAfile", f("ours-os.crt"), f("kube-admin.crt")).status).not.toBe(0);
      const text = openssl("x509", "-in", f("kube-admin.crt"), "-noout", "-text");
      expect(text).toMatch(/Subject: O = system:masters, CN = admin\n/);
      expect(text).toMatch(/X509v3 Extended Key Usage: \n\s+TLS Web Client Authentication\n/);
      expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/);
      expect(text).toMatch(/ASN1 OID: prime256v1/);
      expect(keyId(f("kube-admin.crt"), "authorityKeyIdentifier")).toBe(keyId(f("ours-k8s.crt"), "subjectKeyIdentifier"));
      expect(pemLabel(f("kube-admin.key"))).toBe("EC PRIVATE KEY");
      expect(publicKeyOfKey(f("kube-admin.key"))).toBe(publicKeyOfCert(f("kube-admin.crt")));
      const d = dates(f("kube-admin.crt"));
      // Talos back-dates by ten seconds for clock skew.
      expect(d.notAfter - d.notBefore).toBe(365 * 24 * HOUR_MS + 10_000);
    });
  });
});
