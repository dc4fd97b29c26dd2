// Registry hosts: the names Docker Hub goes by, which registries speak plain HTTP, and the base URL
// of a registry's API.
import { isIPv6 } from 'node:net';

/** The domain Docker Hub references are normalised to. */
export const DOCKER_HUB_DOMAIN = 'docker.io';
/** The old name of Docker Hub ("the Docker Index"); references normalise it to `docker.io`, as distribution does. */
export const LEGACY_DOCKER_HUB_DOMAIN = 'index.docker.io';
/** The host that actually serves Docker Hub's registry API. */
const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** Every name of Docker Hub: its domain, its legacy name, its API host and its old registry host. */
const DOCKER_HUB_ALIASES: readonly string[] = [DOCKER_HUB_DOMAIN, LEGACY_DOCKER_HUB_DOMAIN, DOCKER_HUB_API_HOST, 'registry.hub.docker.com'];

/** True for any name of Docker Hub (host names compare case-insensitively). */
export function isDockerHub(domain: string): boolean {
  return DOCKER_HUB_ALIASES.includes(domain.toLowerCase());
}

/**
 * Registries on loopback, which Docker talks plain HTTP to by default: localhost and any name
 * under it ('registry.localhost', which resolves to loopback, RFC 6761), 127.0.0.0/8 and [::1],
 * with any port. The one place that decides plain HTTP for a registry (see registryBaseUrl).
 */
export function isLoopbackRegistry(domain: string): boolean {
  let host: string;
  if (domain.startsWith('[')) {
    const end = domain.indexOf(']');
    if (end < 0) return false;
    host = domain.slice(1, end);
    // Any spelling of ::1 ('0:0:0:0:0:0:0:1', '::0001').
    return isIPv6(host) && expandIPv6(host) === '0000:0000:0000:0000:0000:0000:0000:0001';
  }
  host = domain.split(':')[0].toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  const octets = host.split('.');
  return octets.length === 4 && octets[0] === '127' && octets.every((o) => /^[0-9]{1,3}$/.test(o) && Number(o) <= 255);
}

function expandIPv6(address: string): string {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : new Array(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((g) => g.toLowerCase().padStart(4, '0')).join(':');
}

/** Base URL of a registry's API: 'http://127.0.0.1:5000' for loopback, else 'https://host'; Docker Hub (any of its names) -> 'https://registry-1.docker.io'. */
export function registryBaseUrl(domain: string): string {
  if (isDockerHub(domain)) return `https://${DOCKER_HUB_API_HOST}`;
  return `${isLoopbackRegistry(domain) ? 'http' : 'https'}://${domain}`;
}
