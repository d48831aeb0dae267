/**
 * Random-access reads of what a transfer serves, so memory stays bounded by
 * one window whatever the file size.
 */
import { open, type FileHandle } from "node:fs/promises";
import type { TftpSource } from "../boot/types.js";

export interface ByteSource {
  /** Size fixed when the source was opened; tsize and the block count use it. */
  readonly size: number;
  /** Exactly `length` bytes at `offset` (the caller stays within `size`). */
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** The file changed size under a running transfer; the bytes already sent no longer match. */
export class SourceChangedError extends Error {
  constructor(path: string) {
    super(`${path} shrank during the transfer`);
    this.name = "SourceChangedError";
  }
}

/** Opening a path that is not a regular file (directory, device, FIFO). */
export class NotRegularFileError extends Error {
  readonly code = "ENOTREG";
  constructor(path: string) {
    super(`${path} is not a regular file`);
    this.name = "NotRegularFileError";
  }
}

export async function openSource(source: TftpSource): Promise<ByteSource> {
  if (source.kind === "buffer") return bufferSource(source.data);
  return fileSource(source.path);
}

function bufferSource(data: Buffer): ByteSource {
  return {
    size: data.length,
    read: async (offset, length) => data.subarray(offset, offset + length),
    close: async () => {},
  };
}

async function fileSource(path: string): Promise<ByteSource> {
  const handle = await open(path, "r");
  let size: number;
  try {
    const st = await handle.stat();
    // A FIFO or device would block or stream forever; a directory has no bytes.
    if (!st.isFile()) throw new NotRegularFileError(path);
    size = st.size;
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
  // Read-ahead: at windowsize 1 a read per 1468-byte block would cost a
  // thread-pool round trip per packet. One buffer per transfer, so memory
  // stays bounded by transfers × READ_AHEAD.
  let cache: { offset: number; data: Buffer } | undefined;
  return {
    size,
    read: async (offset, length) => {
      if (cache && offset >= cache.offset && offset + length <= cache.offset + cache.data.length) {
        return cache.data.subarray(offset - cache.offset, offset - cache.offset + length);
      }
      const want = Math.min(Math.max(length, READ_AHEAD), size - offset);
      const data = await readExactly(handle, path, offset, want);
      cache = { offset, data };
      return data.subarray(0, length);
    },
    close: () => handle.close(),
  };
}

/** Bytes read ahead per transfer. */
const READ_AHEAD = 64 * 1024;

async function readExactly(handle: FileHandle, path: string, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let filled = 0;
  // Each pass either makes progress or hits EOF, so this ends.
  while (filled < length) {
    const { bytesRead } = await handle.read(buf, filled, length - filled, offset + filled);
    if (bytesRead === 0) throw new SourceChangedError(path);
    filled += bytesRead;
  }
  return buf;
}
