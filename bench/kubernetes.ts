// KubernetesDeploy benchmarks (issue 5): conversion time of a 200-service compose file (target
// under 300 ms) and pinning time of a 5,000-object manifest set (target under 1 s). The first run
// pays for loading the yaml package and JIT warm-up, so it is reported apart from the median of the
// warm runs; parsing and rendering the 5,000 objects are reported beside the pinning itself. The
// conversion is also timed in fresh processes (`node convert.js`, bundled as the task is, whole
// process) against Compose v2's `docker-compose config` on the same file, alternating: target at
// most 1.0× Compose (issue 10).
//   node --import tsx bench/kubernetes.ts     (or as part of npm run bench)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { indexLock } from '../tasks/lib/lock/pin';
import type { ImageLock } from '../tasks/lib/lock/types';
import { loadComposeProject } from '../tasks/lib/kube/compose-project';
import { convertCompose } from '../tasks/lib/kube/convert';
import { parseManifestText, renderManifestFiles } from '../tasks/lib/kube/manifests';
import { Pinner, pinManifestFiles } from '../tasks/lib/kube/pin';
import { Summary, VersusCompose, bundleLikeTasks, errorMessage, progress, round, since, summarize, versusComposeConfig, versusComposeLines } from './util';

export const CONVERSION_TARGET_MS = 300;
export const PINNING_TARGET_MS = 1000;

export interface KubernetesReport {
  conversion: {
    services: number;
    objects: number;
    warnings: number;
    bytes: number;
    /** Load (shared compose loader: read, interpolate, merge) + convert, first run in the process. */
    firstMs: number;
    /** Load + convert, warm runs. */
    warm: Summary;
    /** The two parts of the warm runs. */
    load: Summary;
    convert: Summary;
    targetMs: number;
    meetsTarget: boolean;
    /** Load + convert in fresh processes against `docker-compose config` (undefined when it could not be bundled). */
    cold?: VersusCompose;
  };
  pinning: {
    objects: number;
    images: number;
    bytes: number;
    parse: Summary;
    pinFirstMs: number;
    pin: Summary;
    render: Summary;
    parsePinRender: Summary;
    targetMs: number;
    meetsTarget: boolean;
  };
}

export const digest = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`;

export function composeFile(services: number): string {
  const lines = ['name: bench', 'services:'];
  for (let i = 0; i < services; i++) {
    lines.push(
      `  svc-${i}:`,
      `    image: registry.example.com/bench/svc-${i}:1.0`,
      `    command: ["/bin/app", "--port", "${8000 + (i % 1000)}"]`,
      '    environment:',
      `      SERVICE_INDEX: "${i}"`,
      '      LOG_LEVEL: info',
      `      UPSTREAM: http://svc-${(i + 1) % services}:8080`,
      '    ports:',
      `      - "${10000 + i}:8080"`,
      '    healthcheck:',
      '      test: ["CMD", "wget", "-qO-", "http://localhost:8080/health"]',
      '      interval: 10s',
      '      timeout: 2s',
      '      retries: 3',
      '    deploy:',
      '      replicas: 2',
      '      resources:',
      '        limits: {cpus: "0.5", memory: 256M}',
      '    labels:',
      `      com.example.owner: team-${i % 7}`,
      ...(i % 10 === 0 ? ['    volumes:', `      - data-${i}:/var/lib/data`] : []),
      ...(i % 10 === 0 && i > 0 ? ['    depends_on: [svc-0]'] : []), // not svc-0 on itself: Compose refuses a cycle
    );
  }
  lines.push('volumes:');
  for (let i = 0; i < services; i += 10) lines.push(`  data-${i}: {}`);
  return `${lines.join('\n')}\n`;
}

function manifestSet(objects: number): { text: string; lock: ImageLock; images: number } {
  const docs: string[] = [];
  const images: ImageLock['images'] = [];
  const apps = Math.ceil(objects / 4);
  for (let i = 0; i < apps && docs.length < objects; i++) {
    const repo = `registry.example.com/bench/app-${i}`;
    images.push({ name: `app-${i}`, repository: repo, tags: ['1.0'], digest: digest(i + 1), ref: `${repo}@${digest(i + 1)}`, source: 'built', platforms: ['linux/amd64'] });
    docs.push(`# app ${i}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-${i}
  labels: {app: app-${i}}
spec:
  replicas: 2
  selector:
    matchLabels: {app: app-${i}}
  template:
    metadata:
      labels: {app: app-${i}}
    spec:
      initContainers:
        - image: ${repo}:1.0 # migrations
          name: migrate
      containers:
        - name: app
          image: ${repo}:1.0
          ports: [{containerPort: 8080}]
          env:
            - {name: INDEX, value: "${i}"}
`);
    if (docs.length < objects) docs.push(`apiVersion: v1\nkind: Service\nmetadata:\n  name: app-${i}\nspec:\n  selector: {app: app-${i}}\n  ports: [{port: 80, targetPort: 8080}]\n`);
    if (docs.length < objects) {
      docs.push(`apiVersion: batch/v1
kind: CronJob
metadata:
  name: app-${i}-nightly
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: nightly
              image: ${repo}@${digest(0xdead)} # an old digest
`);
    }
    if (docs.length < objects) docs.push(`apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-${i}-config\ndata:\n  settings.json: '{"index": ${i}}'\n`);
  }
  const lock: ImageLock = { schemaVersion: 1, createdAt: '2026-11-22T05:40:00.000Z', images };
  return { text: docs.join('---\n'), lock, images: apps * 3 };
}

export async function measureKubernetes(options: { services?: number; objects?: number; runs?: number } = {}): Promise<KubernetesReport> {
  const services = options.services ?? 200;
  const objectCount = options.objects ?? 5000;
  const runs = options.runs ?? 7;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'col-bench-kube-'));
  try {
    // ---- conversion
    progress(`KubernetesDeploy: converting a ${services}-service compose file (${runs} runs)`);
    const file = path.join(dir, 'docker-compose.yml');
    fs.writeFileSync(file, composeFile(services));
    const convertOnce = () => {
      const start = process.hrtime.bigint();
      const project = loadComposeProject([file], { env: {} });
      const loaded = process.hrtime.bigint();
      const conversion = convertCompose(project);
      return { ms: since(start), loadMs: Number(loaded - start) / 1e6, convertMs: since(loaded), conversion };
    };
    const first = convertOnce();
    const warmRuns = Array.from({ length: runs }, () => convertOnce());
    const warm = summarize(warmRuns.map((r) => r.ms));
    const conversion = {
      services,
      objects: first.conversion.objects.length,
      warnings: first.conversion.warnings.length,
      bytes: fs.statSync(file).size,
      firstMs: round(first.ms),
      warm,
      load: summarize(warmRuns.map((r) => r.loadMs)),
      convert: summarize(warmRuns.map((r) => r.convertMs)),
      targetMs: CONVERSION_TARGET_MS,
      meetsTarget: first.ms < CONVERSION_TARGET_MS && warm.medianMs < CONVERSION_TARGET_MS,
      cold: await coldConversion(dir, file),
    };

    // ---- pinning
    progress(`KubernetesDeploy: pinning a ${objectCount}-object manifest set (${runs} runs)`);
    const set = manifestSet(objectCount);
    const lockIndex = indexLock(set.lock);
    const parseMs: number[] = [];
    const pinMs: number[] = [];
    const renderMs: number[] = [];
    const totalMs: number[] = [];
    let objects = 0;
    let images = 0;
    for (let i = 0; i <= runs; i++) {
      const t0 = process.hrtime.bigint();
      const files = [parseManifestText(set.text, path.join(dir, 'manifests.yaml'))];
      const t1 = process.hrtime.bigint();
      const pinner = new Pinner({ lock: lockIndex, allowUnpinned: false });
      pinManifestFiles(files, pinner);
      const report = pinner.finish();
      const t2 = process.hrtime.bigint();
      renderManifestFiles(files, dir);
      const t3 = process.hrtime.bigint();
      objects = files[0].documents.reduce((n, d) => n + d.objects.length, 0);
      images = report.images.length;
      parseMs.push(Number(t1 - t0) / 1e6);
      pinMs.push(Number(t2 - t1) / 1e6);
      renderMs.push(Number(t3 - t2) / 1e6);
      totalMs.push(Number(t3 - t0) / 1e6);
    }
    const [pinFirst, ...pinWarm] = pinMs;
    const pin = summarize(pinWarm);
    return {
      conversion,
      pinning: {
        objects,
        images,
        bytes: Buffer.byteLength(set.text),
        parse: summarize(parseMs.slice(1)),
        pinFirstMs: round(pinFirst),
        pin,
        render: summarize(renderMs.slice(1)),
        parsePinRender: summarize(totalMs.slice(1)),
        targetMs: PINNING_TARGET_MS,
        meetsTarget: pinFirst < PINNING_TARGET_MS && pin.medianMs < PINNING_TARGET_MS,
      },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Load + convert in fresh node processes, bundled as the task is, against `docker-compose config` on the same file. */
async function coldConversion(dir: string, file: string): Promise<VersusCompose | undefined> {
  const entry = path.join(dir, 'cold-convert.ts');
  const lib = (p: string) => JSON.stringify(path.join(__dirname, '..', 'tasks', 'lib', p));
  fs.writeFileSync(
    entry,
    [
      `import { loadComposeProject } from ${lib('kube/compose-project')};`,
      `import { convertCompose } from ${lib('kube/convert')};`,
      'const start = process.hrtime.bigint();',
      `convertCompose(loadComposeProject([${JSON.stringify(file)}], { env: {} }));`,
      'console.log(Number(process.hrtime.bigint() - start) / 1e6);',
    ].join('\n'),
  );
  const out = path.join(dir, 'cold-convert.js');
  try {
    await bundleLikeTasks(entry, out);
  } catch (err) {
    progress(`KubernetesDeploy: cold conversion not measured (${errorMessage(err)})`);
    return undefined;
  }
  progress('KubernetesDeploy: load + convert in fresh processes against docker-compose config, alternating');
  return versusComposeConfig(out, [file], dir);
}

export function kubernetesMissed(r: KubernetesReport | undefined): string[] {
  if (!r) return [];
  const out: string[] = [];
  if (!r.conversion.meetsTarget) out.push(`KubernetesDeploy: converting ${r.conversion.services} services took ${r.conversion.firstMs} ms first, ${r.conversion.warm.medianMs} ms median ≥ ${r.conversion.targetMs} ms`);
  const cold = r.conversion.cold;
  if (cold && !cold.meetsTarget) out.push(`KubernetesDeploy: load + convert of ${r.conversion.services} services in a fresh process took ${cold.ratio}× the time of ${cold.composeCommand} (${cold.ours.medianMs} ms vs ${cold.compose.medianMs} ms) > ${cold.ratioTarget}×`);
  if (!r.pinning.meetsTarget) out.push(`KubernetesDeploy: pinning ${r.pinning.objects} objects took ${r.pinning.pinFirstMs} ms first, ${r.pinning.pin.medianMs} ms median ≥ ${r.pinning.targetMs} ms`);
  return out;
}

export function kubernetesTable(r: KubernetesReport | undefined): string[] {
  if (!r) return [];
  const c = r.conversion;
  const p = r.pinning;
  return [
    `KubernetesDeploy: convert ${c.services} compose services → ${c.objects} objects (${Math.round(c.bytes / 1024)} KB; target < ${c.targetMs} ms)`,
    `  load + convert: first ${c.firstMs} ms (loads yaml), then median ${c.warm.medianMs} ms (min ${c.warm.minMs}, max ${c.warm.maxMs})  ${c.meetsTarget ? 'ok' : 'MISSED'}`,
    `  of which: compose loader median ${c.load.medianMs} ms, conversion median ${c.convert.medianMs} ms`,
    ...(c.cold ? versusComposeLines('cold, load + convert', c.cold) : ['  cold (fresh process): not measured']),
    `KubernetesDeploy: pin ${p.objects} objects, ${p.images} images (${Math.round(p.bytes / 1024)} KB of YAML; target < ${p.targetMs} ms)`,
    `  pinning: first ${p.pinFirstMs} ms, median ${p.pin.medianMs} ms  ${p.meetsTarget ? 'ok' : 'MISSED'}`,
    `  around it: parse median ${p.parse.medianMs} ms, render median ${p.render.medianMs} ms; parse + pin + render median ${p.parsePinRender.medianMs} ms`,
    '',
  ];
}

if (require.main === module) {
  measureKubernetes().then(
    (r) => {
      process.stderr.write(`${kubernetesTable(r).join('\n')}\n`);
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    },
    (err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}
