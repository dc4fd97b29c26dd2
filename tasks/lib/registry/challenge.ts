// WWW-Authenticate parsing (RFC 7235): one header may carry several challenges, each a scheme
// followed by comma-separated auth-params whose values may be quoted strings with escapes; and
// what the registry client learns from the one it answers.
import { RegistryError } from '../errors';

export interface Challenge {
  scheme: string; // lower case: 'basic' | 'bearer' | …
  params: Record<string, string>; // keys lower case
}

export function parseChallenges(header: string | undefined): Challenge[] {
  if (!header) return [];
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && /[\s,]/.test(header[i])) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i])) i++;
    return header.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipSpace();
    if (i >= n) break;
    const save = i;
    const token = readToken();
    if (!token) {
      i++; // stray character: skip it
      continue;
    }
    let j = i;
    while (j < n && header[j] === ' ') j++;
    if (header[j] === '=' && current) {
      // auth-param of the current challenge
      i = j + 1;
      while (i < n && header[i] === ' ') i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i++];
        }
        i++; // closing quote
      } else {
        const start = i;
        while (i < n && header[i] !== ',') i++;
        value = header.slice(start, i).trim();
      }
      current.params[token.toLowerCase()] = value;
    } else if (header[j] === '=' && !current) {
      i = save + token.length + 1;
    } else {
      // a new scheme (token68 forms such as "Negotiate abc==" are kept as a bare scheme)
      current = { scheme: token.toLowerCase(), params: {} };
      challenges.push(current);
      i = j;
      // a token68 value after the scheme: skip it
      const m = /^[A-Za-z0-9\-._~+/]+=*(?=\s*(,|$))/.exec(header.slice(i));
      if (m && !/=/.test(header.slice(i).split(',')[0].replace(/=+$/, '')) && !/^\s*[A-Za-z0-9_-]+\s*=/.test(header.slice(i))) {
        i += m[0].length;
      }
    }
  }
  return challenges;
}

/** The challenge the client can answer: Bearer preferred over Basic. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

/** How a registry wants requests authenticated, as its challenge says. */
export type ChallengeAuth = { mode: 'basic' } | { mode: 'bearer'; realm: string; service?: string };

/** Basic, or Bearer tokens from the challenge's realm (resolved against the registry's base URL) for its service. */
export function challengeAuth(domain: string, baseUrl: string, challenge: Challenge): ChallengeAuth {
  if (challenge.scheme !== 'bearer') return { mode: 'basic' };
  const realm = challenge.params.realm;
  if (!realm) {
    throw new RegistryError(`${domain} asked for a Bearer token without naming a token server (no realm in WWW-Authenticate).`, {
      registry: domain,
      status: 401,
      code: 'UNAUTHORIZED',
    });
  }
  let realmUrl: URL;
  try {
    realmUrl = new URL(realm, baseUrl);
  } catch {
    throw new RegistryError(`${domain} named a token server that is not a URL: '${realm}'.`, { registry: domain, status: 401, code: 'UNAUTHORIZED' });
  }
  if (realmUrl.protocol !== 'https:' && realmUrl.protocol !== 'http:') {
    throw new RegistryError(`${domain} named a token server with an unsupported scheme: '${realmUrl.protocol}'.`, { registry: domain, status: 401 });
  }
  return { mode: 'bearer', realm: realmUrl.toString(), service: challenge.params.service };
}
