// A watch (?watch=1): from resourceVersion 0 (or none) the current objects as ADDED, from a later
// version the events since (ERROR 410 Expired for a compacted one), then each change as it happens,
// until timeoutSeconds, the client goes, or the test closes the watches.
import type * as http from 'node:http';
import { statusBody, type Obj, type ResourceDef } from './resources';
import { labelMatch } from './selectors';
import type { ObjectStore, Stored, WatchEvent, Watcher } from './store';

export function serveWatch(
  store: ObjectStore,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  watch: { resDef: ResourceDef; namespace?: string; query: Record<string, string>; current: Stored[] },
): void {
  const { resDef, namespace, query } = watch;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
  const from = query.resourceVersion;
  const fieldName = /metadata\.name=([^,]+)/.exec(query.fieldSelector ?? '')?.[1];
  const fits = (e: WatchEvent) =>
    e.res === resDef && (!resDef.namespaced || !namespace || e.obj.metadata.namespace === namespace) && (!fieldName || e.obj.metadata.name === fieldName) && labelMatch(e.obj.metadata.labels, query.labelSelector);
  const send = (e: { type: string; object: Obj }) => res.write(`${JSON.stringify(e)}\n`);
  if (from && from !== '0' && Number(from) < store.compactedBefore) {
    send({ type: 'ERROR', object: statusBody(410, 'Expired', `too old resource version: ${from} (${store.compactedBefore})`) });
    res.end();
    return;
  }
  if (!from || from === '0') for (const s of watch.current) send({ type: 'ADDED', object: store.serialize(s) });
  else for (const e of store.history) if (e.rv > Number(from) && fits(e)) send({ type: e.type, object: e.obj });
  const watcher: Watcher = {
    send: (e) => {
      if (fits(e)) send({ type: e.type, object: e.obj });
    },
    end: () => {
      store.watchers.delete(watcher);
      res.end();
    },
  };
  store.watchers.add(watcher);
  const timeout = Number(query.timeoutSeconds);
  const timer = timeout > 0 ? setTimeout(() => watcher.end(), timeout * 1000) : undefined;
  req.socket.on('close', () => {
    if (timer) clearTimeout(timer);
    store.watchers.delete(watcher);
  });
}
