/**
 * A static HTTP mirror for the netboot tests, run where the daemon can reach
 * it — usually inside the daemon's network namespace, whose loopback is not
 * the test runner's:
 *   ip netns exec NS node dist/test/helpers/static-mirror-fixture.js --root DIR [--address 127.0.0.1] [--port 0]
 * Serves the regular files under DIR (subdirectories included) at their
 * relative paths, GET and HEAD only, from a map built at start (a request is
 * a lookup, never a path walk); anything else is a 404. No Range, no ETag:
 * the plainest mirror a site could run. Prints one JSON line
 * `{"ready":true,"port":N,...}` on stdout once bound, then one
 * `{"request":{method,path,status,bytes}}` line per answered request (bytes:
 * body bytes handed to the response; the line is printed when the response
 * has finished or the client went away). Stops on SIGTERM/SIGINT.
 */
import { createReadStream, readdirSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { join, relative, sep } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    root: { type: "string" },
    address: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
  },
});
if (!values.root) {
  process.stderr.write("usage: static-mirror-fixture --root DIR [--address 127.0.0.1] [--port 0]\n");
  process.exit(2);
}
const root = values.root;

/** URL path → file, for every regular file under `root`. */
function fileMap(dir: string, into = new Map<string, { path: string; size: number }>()): Map<string, { path: string; size: number }> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) fileMap(path, into);
    else if (e.isFile()) into.set(`/${relative(root, path).split(sep).join("/")}`, { path, size: statSync(path).size });
  }
  return into;
}
const files = fileMap(root);

/** A request as the test reads it back from stdout. */
export interface MirrorRequestLine {
  method: string;
  path: string;
  status: number;
  bytes: number;
}

const report = (r: MirrorRequestLine) => process.stdout.write(`${JSON.stringify({ request: r })}\n`);

const server = createServer((req, res) => {
  const method = req.method ?? "";
  const path = (req.url ?? "").split("?")[0] ?? "";
  const file = files.get(path);
  let bytes = 0;
  res.once("close", () => report({ method, path, status: res.statusCode, bytes }));
  if ((method !== "GET" && method !== "HEAD") || !file) {
    res.writeHead(method === "GET" || method === "HEAD" ? 404 : 405, { "content-length": 0, connection: "close" });
    res.end();
    return;
  }
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": file.size });
  if (method === "HEAD") {
    res.end();
    return;
  }
  const body = createReadStream(file.path);
  body.on("data", (chunk) => (bytes += chunk.length));
  body.on("error", () => res.destroy());
  body.pipe(res);
});

server.once("error", (err) => {
  process.stderr.write(`static-mirror-fixture: ${err.message}\n`);
  process.exit(1);
});
server.listen(Number(values.port), values.address, () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : Number(values.port);
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, port, files: [...files.keys()].sort() })}\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
