// A stand-in for the Hugging Face Hub on 127.0.0.1: the tree API (paged, with LFS sha256 or
// git blob ids), resolve URLs that redirect to a "CDN" path, Range requests, and files that
// misbehave on purpose. It closes itself when the test file ends (or after two minutes).
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';

export interface ServedFile {
  /** Path in the repository, e.g. 'en/c4-validation.00000-of-00008.json.gz'. */
  path: string;
  bytes: Buffer;
  /** Kept out of LFS: the listing then gives only a git blob id. */
  git?: boolean;
  /** Listed with this sha256 instead of the real one. */
  listedSha256?: string;
  /** Listed, but resolving it gives 404. */
  missing?: boolean;
  /** The first request for it sends this many bytes, then drops the connection. */
  dropAfter?: number;
  /** Ignores Range headers (always 200, whole file). */
  noRange?: boolean;
}

export interface Hub {
  endpoint: string;
  /** Every request: its path and Range header. */
  requests: { path: string; range?: string }[];
}

export async function startHub(repos: { type: 'dataset' | 'model'; repo: string; files: ServedFile[] }[], pageSize = 2): Promise<Hub> {
  const requests: Hub['requests'] = [];
  const dropped = new Set<string>();
  const cdn = new Map<string, ServedFile>();
  let endpoint = '';

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url!, endpoint);
    requests.push({ path: url.pathname, range: req.headers.range });
    for (const { type, repo, files } of repos) {
      const tree = `/api/${type}s/${repo}/tree/main`;
      if (url.pathname === tree || url.pathname.startsWith(tree + '/')) {
        const folder = url.pathname.slice(tree.length + 1);
        const entries = files
          .filter((f) => (folder === '' ? !f.path.includes('/') : f.path.startsWith(folder + '/') && !f.path.slice(folder.length + 1).includes('/')))
          .map((f) => ({
            type: 'file',
            path: f.path,
            size: f.bytes.length,
            oid: createHash('sha1').update(`blob ${f.bytes.length}\0`).update(f.bytes).digest('hex'),
            ...(f.git ? {} : { lfs: { oid: f.listedSha256 ?? createHash('sha256').update(f.bytes).digest('hex'), size: f.bytes.length, pointerSize: 134 } }),
          }));
        const cursor = Number(url.searchParams.get('cursor') ?? 0);
        const page = entries.slice(cursor, cursor + pageSize);
        if (cursor + pageSize < entries.length) res.setHeader('link', `<${endpoint}${url.pathname}?cursor=${cursor + pageSize}>; rel="next"`);
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify(page));
      }
      const resolve = `/${type === 'dataset' ? 'datasets/' : ''}${repo}/resolve/main/`;
      if (url.pathname.startsWith(resolve)) {
        const file = files.find((f) => f.path === url.pathname.slice(resolve.length));
        if (!file || file.missing) return res.writeHead(404).end('Entry not found');
        const id = createHash('sha1').update(repo + file.path).digest('hex');
        cdn.set(id, file);
        return res.writeHead(302, { location: `${endpoint}/cdn/${id}` }).end();
      }
    }
    const file = url.pathname.startsWith('/cdn/') ? cdn.get(url.pathname.slice(5)) : undefined;
    if (!file) return res.writeHead(404).end('Not found');
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range && !file.noRange ? Number(range[1]) : 0;
    if (start >= file.bytes.length && start > 0) return res.writeHead(416).end();
    const body = file.bytes.subarray(start);
    res.writeHead(start > 0 ? 206 : 200, {
      'content-length': body.length,
      'accept-ranges': file.noRange ? 'none' : 'bytes',
      ...(start > 0 ? { 'content-range': `bytes ${start}-${file.bytes.length - 1}/${file.bytes.length}` } : {}),
    });
    if (file.dropAfter !== undefined && !dropped.has(file.path)) {
      dropped.add(file.path);
      res.write(body.subarray(0, file.dropAfter), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  };

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () => {
    server.closeAllConnections();
    server.close();
  };
  setTimeout(close, 120_000).unref();
  after(close);
  return { endpoint, requests };
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
