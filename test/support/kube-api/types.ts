// The double's public face: its options, what it records, and what a test can do with it.
import type { PodBehaviour } from './pods';
import type { Obj } from './resources';

export interface KubeApiOptions {
  /** HTTPS with a test CA and client-certificate authentication (default true). */
  tls?: boolean;
  /** Bearer token → user name. */
  tokens?: Record<string, string>;
  /** Refuse (403) a request: return true to deny. */
  deny?: (request: { user: string; verb: string; group: string; resource: string; namespace?: string; name?: string }) => boolean;
  /** Controller step (default 15 ms). */
  stepMs?: number;
  /** Ticks a pod takes from creation to its behaviour (default 2). */
  podStartTicks?: number;
  /** One "second" of progressDeadlineSeconds, in real milliseconds (default 1000). */
  secondMs?: number;
  /** Nodes for DaemonSets (default 2). */
  nodes?: number;
  /** Events kept for watches from a resourceVersion (default 10000). */
  historyLimit?: number;
}

export interface ApiRequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  user?: string;
  contentType?: string;
  status: number;
}

/** Answer the next `times` requests that `match` accepts with `status` instead of serving them. */
export interface Fault {
  match: (r: { method: string; path: string; query: Record<string, string> }) => boolean;
  status: number;
  retryAfterSeconds?: number;
  times: number;
}

export interface KubeApiServer {
  url: string;
  /** PEM of the CA that signed the server certificate (and client certificates). */
  caPem?: string;
  /** A client certificate and key for `user`, signed by the test CA. */
  clientCertificate(user: string): { cert: string; key: string };
  requests: ApiRequestRecord[];
  behave(match: string | RegExp, behaviour: PodBehaviour): void;
  /** Delay between a spec change and observedGeneration catching up. */
  observeDelayMs: number;
  imageIdFor: (image: string) => string;
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): Obj | undefined;
  list(apiVersion: string, kind: string, namespace?: string): Obj[];
  /** Changes an object as another field manager would (operation Update): it takes the fields it changes. */
  update(apiVersion: string, kind: string, namespace: string | undefined, name: string, manager: string, mutate: (obj: Obj) => void): Obj;
  /** Creates an object directly (e.g. a namespace), owned by `manager` (operation Update). */
  create(obj: Obj, manager?: string): Obj;
  /** Forget watch history older than the current version (the next watch from an old version gets 410). */
  compact(): void;
  /** End every open watch now (as an API server does on its own timeouts). */
  closeWatches(): void;
  /**
   * Answer the next `times` requests that `match` accepts with `status` (a Status body) instead of
   * serving them: 429 with Retry-After, 500, 503 — what an overloaded real server does, but not on
   * demand. Watches included (a watch answered 503 is a watch that could not start).
   */
  fault(fault: Omit<Fault, 'times'> & { times?: number }): void;
  stop(): Promise<void>;
}
