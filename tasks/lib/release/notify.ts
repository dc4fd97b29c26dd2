// Deploy notifications: one POST per deploy to a webhook (notifyUrl, a secret: incoming webhook
// URLs carry their key in the path), with the environment, the result, whether the deploy was rolled
// back, each service's digest before and after, and the run's URL. notifyFormat shapes the body for
// a plain JSON consumer, a Teams Workflows webhook (an Adaptive Card) or a Slack incoming webhook
// (`{text, blocks}`). Sent with the registry client's bounded retries (sendWithRetries); a webhook
// that fails is a warning, never a failed deploy.
import { TaskContext, cancelDeadline, pipelineInfo, runUrl } from '../context';
import { InputError, errorMessage } from '../errors';
import { parseReference, repositoryName } from '../reference';
import { HttpTransport, NetworkError, withTransport } from '../util/http';
import { sendWithRetries } from '../util/http-retry';
import { DEFAULT_RETRY, RetryOptions } from '../util/retry';

export const NOTIFY_FORMATS = ['json', 'teams', 'slack'] as const;
export type NotifyFormat = (typeof NOTIFY_FORMATS)[number];

export interface NotifySettings {
  url: string;
  format: NotifyFormat;
}

/** One service (or Kubernetes container) of the release: the pinned references before and after. */
export interface ServiceImages {
  service: string;
  /** What ran before this deploy (undefined: the service is new, or it is not known). */
  before?: string;
  /** What this deploy releases. */
  after?: string;
}

export type DeployResult = 'succeeded' | 'failed' | 'cancelled';

export interface DeployNotice {
  task: 'ComposeDeploy' | 'KubernetesDeploy';
  environment: string;
  result: DeployResult;
  rolledBack: boolean;
  services: ServiceImages[];
  /** The first line of the failure, when there is one. */
  message?: string;
  buildNumber?: string;
  runUrl?: string;
}

/** The notifyUrl and notifyFormat inputs, checked; undefined without a URL. The URL is a secret from here on. */
export function notifySettings(url: string | undefined, format: NotifyFormat, setSecret: (s: string) => void): NotifySettings | undefined {
  if (!url) return undefined;
  setSecret(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The value is a secret: the message does not repeat it.
    throw new InputError("Input 'notifyUrl' is not a URL. Give the webhook's full https:// address, from a secret variable.");
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new InputError(`Input 'notifyUrl' must be an https:// (or http://) URL, not ${parsed.protocol}.`);
  return { url, format };
}

/** The digest of a pinned reference, and its repository; the reference as it is when it has no digest. */
function split(ref: string | undefined): { repository?: string; digest?: string } {
  if (!ref) return {};
  try {
    const r = parseReference(ref);
    return { repository: repositoryName(r), digest: r.digest ?? ref };
  } catch {
    return { digest: ref };
  }
}

function serviceRows(services: ServiceImages[]) {
  return services.map((s) => {
    const before = split(s.before);
    const after = split(s.after);
    return { service: s.service, repository: after.repository ?? before.repository, oldDigest: before.digest, newDigest: after.digest, changed: before.digest !== after.digest };
  });
}

function headline(n: DeployNotice): string {
  const what = `${n.task}${n.buildNumber ? ` of build ${n.buildNumber}` : ''} to ${n.environment}`;
  const result = n.result === 'succeeded' ? 'succeeded' : n.result === 'cancelled' ? 'was cancelled' : 'failed';
  return `${what} ${result}${n.rolledBack ? '; rolled back to the previous release' : ''}`;
}

const short = (digest: string | undefined) => (digest ? (digest.startsWith('sha256:') ? digest.slice(0, 19) : digest) : '—');

/** The request body for the webhook's format. */
export function notificationBody(notice: DeployNotice, format: NotifyFormat): Record<string, unknown> {
  const rows = serviceRows(notice.services);
  const title = headline(notice);
  if (format === 'json') {
    return {
      schemaVersion: 1,
      task: notice.task,
      environment: notice.environment,
      result: notice.result,
      rolledBack: notice.rolledBack,
      buildNumber: notice.buildNumber,
      runUrl: notice.runUrl,
      message: notice.message,
      services: rows,
    };
  }
  const change = (r: (typeof rows)[number]) => (r.changed ? `${short(r.oldDigest)} → ${short(r.newDigest)}` : `${short(r.newDigest)} (unchanged)`);
  if (format === 'teams') {
    // An Adaptive Card in a message: what Teams Workflows ("When a Teams webhook request is received") posts.
    const body: Record<string, unknown>[] = [
      { type: 'TextBlock', text: title, weight: 'Bolder', size: 'Medium', wrap: true, color: notice.result === 'succeeded' ? 'Good' : 'Attention' },
      {
        type: 'FactSet',
        facts: [
          { title: 'Environment', value: notice.environment },
          { title: 'Result', value: notice.result },
          { title: 'Rolled back', value: notice.rolledBack ? 'yes' : 'no' },
          ...rows.map((r) => ({ title: r.service, value: change(r) })),
        ],
      },
    ];
    if (notice.message) body.push({ type: 'TextBlock', text: notice.message, wrap: true, isSubtle: true });
    const card: Record<string, unknown> = { $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', type: 'AdaptiveCard', version: '1.4', body };
    if (notice.runUrl) card.actions = [{ type: 'Action.OpenUrl', title: 'Open the run', url: notice.runUrl }];
    return { type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null, content: card }] };
  }
  // Slack: `text` is the notification's fallback; blocks in mrkdwn, where &, < and > are escaped.
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const blocks: Record<string, unknown>[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `*${esc(title)}*${notice.message ? `\n${esc(notice.message)}` : ''}` } },
  ];
  if (rows.length) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: rows.map((r) => `• \`${esc(r.service)}\` ${esc(change(r))}`).join('\n') } });
  if (notice.runUrl) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `<${notice.runUrl}|Open the run>` }] });
  return { text: esc(title), blocks };
}

export interface SendNotificationOptions {
  transport?: HttpTransport;
  retry?: RetryOptions;
  /** When sending must be over (epoch ms); default 30 s from now. */
  deadline?: number;
}

/** Attempts of a notification: a webhook that is down for longer is a warning. */
const NOTIFY_RETRY: Required<RetryOptions> = { ...DEFAULT_RETRY, attempts: 3, baseDelayMs: 500, maxDelayMs: 2_000, maxRetryAfterMs: 5_000 };
const NOTIFY_TIMEOUT_MS = 30_000;

/**
 * POSTs the notice to the webhook, retrying 408/429/5xx and transient network errors. Returns
 * whether the webhook took it (2xx); every failure is a warning, never an error. The URL is
 * registered as a secret and never printed (not even its host: a log line says "the notifyUrl webhook").
 */
export async function sendNotification(settings: NotifySettings, notice: DeployNotice, ctx: Pick<TaskContext, 'info' | 'warn' | 'setSecret'>, options: SendNotificationOptions = {}): Promise<boolean> {
  ctx.setSecret(settings.url);
  const started = Date.now();
  const deadline = options.deadline ?? started + NOTIFY_TIMEOUT_MS;
  const body = JSON.stringify(notificationBody(notice, settings.format));
  const what = 'the notifyUrl webhook';
  try {
    const { res, attempts } = await withTransport(options.transport, (transport) =>
      sendWithRetries(
        transport,
        { method: 'POST', url: settings.url, headers: { 'Content-Type': 'application/json' }, body, timeoutMs: 10_000, maxBodyBytes: 64 * 1024 },
        what,
        { retry: { ...NOTIFY_RETRY, ...options.retry }, deadline },
        (err, tries, timedOut) =>
          timedOut
            ? new NetworkError('ETIMEDOUT', `did not answer within the ${Math.round((deadline - started) / 1000)} s a notification has`)
            : new NetworkError(err.code, `could not be reached (${err.code}) after ${tries} attempt${tries === 1 ? '' : 's'}`),
      ),
    );
    if (res.status >= 200 && res.status < 300) {
      ctx.info(`Notification (${settings.format}) sent to ${what}: it answered ${res.status}.`);
      return true;
    }
    ctx.warn(`The notification could not be delivered: ${what} answered ${res.status} after ${attempts} attempt${attempts === 1 ? '' : 's'}. The deploy's result is not changed by it.`);
  } catch (err) {
    const why = err instanceof NetworkError ? err.message : errorMessage(err);
    ctx.warn(`The notification could not be delivered: ${what} ${why}. The deploy's result is not changed by it.`);
  }
  return false;
}

/** What a deploy flow tells its notification, besides how it ended. */
export interface ReleaseNotes {
  /** The services with what ran before and what this deploy releases, once the task knows them. */
  services(list: ServiceImages[]): void;
}

/**
 * Runs `deploy`, then sends one notification (with `settings`) saying how it ended: succeeded,
 * failed, or cancelled (the job's signal aborted). Whether it was rolled back is the task's own
 * `rolledBack` output, which both deploy tasks set on every path; `deploy` gets a context that
 * watches it. After a cancel the notification gets what is left of the agent's grace time.
 * The deploy's result or error is passed on unchanged.
 */
export async function withNotification<T>(
  settings: NotifySettings | undefined,
  ctx: TaskContext,
  about: { task: DeployNotice['task']; environment: string; buildNumber?: string },
  deploy: (ctx: TaskContext, notes: ReleaseNotes) => Promise<T>,
  options: SendNotificationOptions = {},
): Promise<T> {
  let services: ServiceImages[] = [];
  const notes: ReleaseNotes = { services: (list) => (services = list) };
  if (!settings) return deploy(ctx, notes);
  ctx.setSecret(settings.url);
  const graceEnd = cancelDeadline(ctx.signal);
  let rolledBack = false;
  // The context the deploy gets: ctx itself, but for watching the rolledBack output on its way.
  const watched: TaskContext = {
    info: (m) => ctx.info(m),
    warn: (m) => ctx.warn(m),
    debug: (m) => ctx.debug(m),
    group: (title, fn) => ctx.group(title, fn),
    setSecret: (s) => ctx.setSecret(s),
    output: (name, value) => {
      if (name === 'rolledBack') rolledBack = value === 'true';
      ctx.output(name, value);
    },
    uploadArtifact: (name, file) => ctx.uploadArtifact(name, file),
    addSummary: (name, markdown) => ctx.addSummary(name, markdown),
    publishTestResults: (o) => ctx.publishTestResults(o),
    tempDir: ctx.tempDir,
    variable: (name) => ctx.variable(name),
    signal: ctx.signal,
  };
  const notice = (result: DeployResult, err?: unknown): DeployNotice => ({
    ...about,
    result,
    rolledBack,
    services,
    message: err === undefined ? undefined : errorMessage(err).split('\n')[0],
    runUrl: runUrl(pipelineInfo(ctx)),
  });
  let outcome: { value: T } | { error: unknown };
  try {
    outcome = { value: await deploy(watched, notes) };
  } catch (error) {
    outcome = { error };
  }
  const failure = 'error' in outcome ? outcome.error : undefined;
  // A job cancelled at any point ends Cancelled (runTask), whatever the deploy returned or threw.
  const cancelled = ctx.signal.aborted;
  // A cancelled task sends in what is left of its grace time, keeping a little to report.
  const deadline = cancelled ? Math.max(graceEnd() - 250, Date.now() + 1_000) : options.deadline;
  await sendNotification(settings, notice(cancelled ? 'cancelled' : 'error' in outcome ? 'failed' : 'succeeded', failure), ctx, { ...options, deadline });
  if ('error' in outcome) throw outcome.error;
  return outcome.value;
}
