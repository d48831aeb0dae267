import { Hono, type Context } from "hono";
import type { Logger } from "pino";
import type { Booter } from "../boot/booter.js";
import { parseMac, type Mac } from "../boot/mac.js";
import { render } from "../boot/templates.js";
import type { UrlCache } from "../boot/url-cache.js";
import type { Templates } from "../boot/templates.js";
import { sendBytes, sendFile } from "./send-file.js";

export interface BootRouteDeps {
  booter: Booter;
  urlCache: UrlCache;
  bootloaderFiles: () => ReadonlyMap<string, string>;
  templates: () => Templates;
  log: Logger;
}

const SCRIPT_TYPE = "text/plain; charset=utf-8";

function contentTypeFor(name: string): string {
  return name.endsWith(".efi") ? "application/efi" : "application/octet-stream";
}

/**
 * The unauthenticated boot path: iPXE scripts, GRUB configs, kernels,
 * initrds, boot binaries and per-machine configs. Every answer carries
 * Content-Length (boot storms stall on chunked scripts).
 */
export function bootRoutes(deps: BootRouteDeps): Hono {
  const app = new Hono();
  const { booter, log } = deps;

  // Hono has already percent-decoded the parameter once: decoding again would turn %25 into a URIError.
  const withMac = (c: Context): Mac | null => parseMac(c.req.param("mac") ?? "");

  app.get("/boot.ipxe", (c) => sendBytes(c, render(deps.templates().ipxeChain, { base: booter.urls.base }), { contentType: SCRIPT_TYPE }));

  app.get("/boot/:mac/boot.ipxe", async (c) => {
    const mac = withMac(c);
    const script = mac ? await booter.ipxeScript(mac) : { body: null };
    if (script.body === null) return c.text("no boot script for this machine\n", 404);
    return sendBytes(c, script.body, { contentType: SCRIPT_TYPE });
  });

  app.get("/boot/:mac/grub.cfg", async (c) => {
    const mac = withMac(c);
    const cfg = mac ? await booter.grubConfig(mac) : null;
    if (cfg === null) return c.text("no GRUB config for this machine\n", 404);
    return sendBytes(c, cfg, { contentType: SCRIPT_TYPE });
  });

  // For a GRUB image whose prefix is our HTTP URL (grub-image.ts): its `normal` reads $prefix/grub.cfg.
  const grubBootstrap = (c: Context) =>
    sendBytes(c, render(deps.templates().grubBootstrap, { hostport: new URL(booter.urls.base).host }), { contentType: SCRIPT_TYPE });
  app.get("/grub/grub.cfg", grubBootstrap);
  app.get("/grub/x86_64-efi/grub.cfg", grubBootstrap);

  const bootFile = async (c: Context, which: "kernel" | number): Promise<Response> => {
    const mac = withMac(c);
    if (!mac) return c.text("not found\n", 404);
    const found = await booter.bootFileSource(mac, which);
    if (!found.ok) {
      // 503 with Retry-After: iPXE's retry, and Talos-era firmware, come back later.
      if (found.status === 503) c.header("Retry-After", "30");
      return c.text(`${found.status === 503 ? "boot file not ready yet" : "not found"}\n`, found.status);
    }
    const source = found.source;
    let path = source;
    if (/^https?:\/\//.test(source)) {
      try {
        path = await deps.urlCache.ensure(source);
      } catch (err) {
        log.error({ mac, url: source, err: (err as Error).message }, "cannot fetch a boot file named by URL");
        return c.text("boot file unavailable\n", 502);
      }
    }
    const isGet = c.req.method === "GET";
    return sendFile(c, path, {
      onBody: (info) => {
        if (isGet && (info.status === 200 || info.status === 206)) booter.bootFileSent(mac, which, info.bytesSent, info.complete && info.status === 200);
      },
    });
  };
  app.get("/boot/:mac/kernel", (c) => bootFile(c, "kernel"));
  app.get("/boot/:mac/:initrd{initrd-[0-9]{1,3}}", (c) => bootFile(c, Number(c.req.param("initrd").slice("initrd-".length))));

  app.get("/boot/:mac/config/:token", (c) => {
    const mac = withMac(c);
    if (!mac) return c.text("not found\n", 404);
    const result = booter.config(mac, c.req.param("token"));
    if (!result.ok) {
      // The reason goes to the log, never to the client: a 404 says nothing.
      log.warn({ mac, from: remoteAddress(c), reason: result.reason }, "config request refused");
      return c.text("not found\n", 404);
    }
    c.header("Cache-Control", "no-store");
    if ("text" in result.source) return sendBytes(c, result.source.text, { contentType: "application/yaml" });
    return sendFile(c, result.source.path, { contentType: "application/yaml" });
  });

  app.get("/bootloaders/:name", (c) => {
    const name = c.req.param("name");
    const path = deps.bootloaderFiles().get(name);
    if (!path) return c.text("not found\n", 404);
    return sendFile(c, path, { contentType: contentTypeFor(name) });
  });

  return app;
}

export function remoteAddress(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}
