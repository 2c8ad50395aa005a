// The Hugging Face Hub's file listing and download URLs. $HF_ENDPOINT moves both (a mirror, or
// the tests' local server); $HF_TOKEN, when set, is sent for gated or rate-limited access.
import { MambalabError } from '../errors.js';

export type RepoType = 'dataset' | 'model';

export interface HubFile {
  /** Path inside the repository. */
  path: string;
  size: number;
  /** sha256 of the content: the LFS object id (large files). */
  sha256?: string;
  /** Git blob id (sha1 of "blob <size>\0" + content): what verifies files not in LFS. */
  gitOid: string;
}

export function hubEndpoint(): string {
  return (process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

export function hubHeaders(): Record<string, string> {
  return process.env.HF_TOKEN ? { authorization: `Bearer ${process.env.HF_TOKEN}` } : {};
}

export function resolveUrl(repoType: RepoType, repo: string, path: string, revision = 'main'): string {
  return `${hubEndpoint()}/${repoType === 'dataset' ? 'datasets/' : ''}${repo}/resolve/${revision}/${path}`;
}

// The listing API pages long folders (C4's en/ holds 1032 files); this bounds the walk.
const MAX_PAGES = 100;

/** The files of one folder of a repository, from the Hub's tree API (following its pages). */
export async function listFolder(repoType: RepoType, repo: string, folder: string, revision = 'main'): Promise<HubFile[]> {
  let url: string | undefined = `${hubEndpoint()}/api/${repoType}s/${repo}/tree/${revision}${folder ? `/${folder}` : ''}`;
  const files: HubFile[] = [];
  for (let page = 0; url && page < MAX_PAGES; page++) {
    const response = await hubFetch(url, { headers: { accept: 'application/json', ...hubHeaders() } });
    if (!response.ok) {
      throw new MambalabError(`listing ${repo}/${folder}: HTTP ${response.status} from ${url}${response.status === 404 ? ' (no such repository or folder)' : ''}`);
    }
    const entries = (await response.json()) as { type: string; path: string; size: number; oid: string; lfs?: { oid: string } }[];
    for (const e of entries) if (e.type === 'file') files.push({ path: e.path, size: e.size, sha256: e.lfs?.oid, gitOid: e.oid });
    url = nextPage(response.headers.get('link'));
  }
  if (url) throw new MambalabError(`listing ${repo}/${folder}: more than ${MAX_PAGES} pages`);
  return files;
}

function nextPage(link: string | null): string | undefined {
  return link?.match(/<([^>]+)>;\s*rel="next"/)?.[1];
}

const OFFLINE_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** fetch, with "cannot connect" turned into a message that says what to do instead. */
export async function hubFetch(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const code = cause?.code ?? (e as Error).name;
    if (OFFLINE_CODES.has(code) || (e as Error).name === 'TimeoutError') {
      throw new MambalabError(
        `cannot reach ${new URL(url).host} (${code}): this machine seems to be offline. ` +
          `Download the files elsewhere and copy them into the cache (see datasets/README.md), then run 'mambalab data prepare --input <folder>'; ` +
          `or set HF_ENDPOINT to a Hugging Face mirror you can reach`,
      );
    }
    throw new MambalabError(`${url}: ${(e as Error).message}${cause?.message ? ` (${cause.message})` : ''}`);
  }
}
